"""LiveAdmin settings, read from the environment.

With nothing set, LiveAdmin runs on the embedded default: SQLite, a local-memory
cache, Celery tasks run without a broker, and the sandbox provider is mounted.
Production sets DATABASE_URL, REDIS_URL, CELERY_BROKER_URL, SECRET_KEY,
LIVEADMIN_ENCRYPTION_KEY and ALLOWED_HOSTS.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LIVEADMIN_VAR_DIR", BASE_DIR / "var"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be a boolean (1/0, true/false), not {raw!r}"
    )


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# pytest sets PYTEST_VERSION for the run (and for the workers and servers its tests start).
TESTING = "PYTEST_VERSION" in os.environ
_TEST_SECRETS = {
    "SECRET_KEY": "tests-only-secret-key-not-for-production-0123456789",
    "LIVEADMIN_ENCRYPTION_KEY": "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
}


def env_secret(name: str, *, dev_file: str, debug: bool, generate) -> str:
    """Read a secret from the environment.

    In development (DEBUG on) a missing secret is generated once into a file under
    var/ (outside git) so a fresh checkout runs without setup; under pytest a fixed
    test value is used (shared by the workers the tests start); in production it is
    an error to leave it unset.
    """
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if TESTING:
        return _TEST_SECRETS[name]
    if not debug:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")
    path = VAR_DIR / dev_file
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


def _random_secret_key() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret(
    "SECRET_KEY", dev_file="secret_key", debug=DEBUG, generate=_random_secret_key
)
# Comma-separated Fernet keys: the first encrypts, all decrypt (key rotation).
LIVEADMIN_ENCRYPTION_KEY = env_secret(
    "LIVEADMIN_ENCRYPTION_KEY",
    dev_file="encryption_key",
    debug=DEBUG,
    generate=_fernet_key,
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "liveadmin",
    "messaging",
    "messaging.sandbox",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "liveadmin.urls"
WSGI_APPLICATION = "liveadmin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "liveadmin.context_processors.roles",
            ],
        },
    },
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": environ.Env.db_url_config(os.environ["DATABASE_URL"])}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "liveadmin.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault(
        "OPTIONS", {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    if TESTING:
        # A file, not memory: the Celery worker processes some tests start must
        # share the test database (they get it as DATABASE_URL=sqlite:///...).
        DATABASES["default"]["TEST"] = {
            "NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: with a broker, workers run sends (and beat runs the periodic tasks).
# Without one (the embedded default) messaging/dispatch.py runs the same task
# functions on a small thread pool inside the web process, plus a scheduler
# thread for scheduled batches and recovery, so `make run` needs no broker and
# the batch page still shows live progress. Other tasks run eagerly then.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep countdowns well under this; longer waits are database rows (scheduled sends).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Seconds between runs of the periodic tasks: start due scheduled batches, and
# re-queue sends a dead worker claimed but never answered.
SEND_TICK_SECONDS = env_int("SEND_TICK_SECONDS", 10)
CELERY_BEAT_SCHEDULE = {
    "start-due-batches": {
        "task": "messaging.tasks.start_due_batches",
        "schedule": float(SEND_TICK_SECONDS),
    },
    "recover-sends": {
        "task": "messaging.tasks.recover_sends",
        "schedule": float(SEND_TICK_SECONDS),
    },
    "rollup-counts": {
        "task": "liveadmin.tasks.rollup_counts",
        "schedule": float(SEND_TICK_SECONDS),
    },
}
# A claimed send with no answer after this long belongs to a dead worker and is
# sent again (with the same Random, so the provider de-duplicates).
SEND_CLAIM_TIMEOUT = env_int("SEND_CLAIM_TIMEOUT", 120)
# Attempts per room for retryable answers (network errors, 5xx, frequency limits).
SEND_MAX_ATTEMPTS = env_int("SEND_MAX_ATTEMPTS", 5)
# A batch pauses itself after this many provider failures in a row (per batch too).
BATCH_PAUSE_AFTER_FAILURES = env_int("BATCH_PAUSE_AFTER_FAILURES", 20)
# Rooms per Celery task of a batch; tasks run in parallel on all workers.
BATCH_CHUNK_SIZE = env_int("BATCH_CHUNK_SIZE", 50)
# Sends are paced this fraction under each provider limit (network jitter) with
# no burst, so bulk sends meet no frequency-limit errors (messaging/ratelimit.py).
RATE_LIMIT_HEADROOM = float(os.environ.get("RATE_LIMIT_HEADROOM", "0.05"))
# Embedded default (no broker): threads sending in the web process.
EMBEDDED_WORKERS = env_int("EMBEDDED_WORKERS", 4)
EMBEDDED_SCHEDULER = env_bool("EMBEDDED_SCHEDULER", not TESTING)

# The sandbox provider is a product feature (a test mode), on by default in development.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG or TESTING)

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve straight from the source folders in development and tests (no collectstatic).
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG or TESTING

# Production hardening; `manage.py check --deploy` is clean with DEBUG off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not (DEBUG or TESTING))
# The provider calls the webhook over plain HTTP inside private networks too.
SECURE_REDIRECT_EXEMPT = [r"^webhooks/", r"^sandbox/"]
SESSION_COOKIE_SECURE = not (DEBUG or TESTING)
CSRF_COOKIE_SECURE = not (DEBUG or TESTING)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "liveadmin.logging.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx logs every request URL at INFO, and a Tencent URL carries the usersig.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # runserver's request log prints full URLs (usersig=, Signature=): send it
        # through the redacting handler instead of Django's own.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# Before-send webhook (webhooks/hotpath.py).
WEBHOOK_MAX_BODY = env_int("WEBHOOK_MAX_BODY", 1024 * 1024)
# How old a signed call's RequestTime may be, in seconds. The provider documents no
# replay window (UNCONFIRMED, PROVIDERS.md 3.2): 300 s tolerates clock skew and retries.
WEBHOOK_SIGN_MAX_AGE = env_int("WEBHOOK_SIGN_MAX_AGE", 300)
# How often a process checks the rules version (Redis GET, or a DB read without Redis).
WEBHOOK_VERSION_CHECK_SECONDS = float(
    os.environ.get("WEBHOOK_VERSION_CHECK_SECONDS", "0.5" if REDIS_URL else "1.0")
)
# Decision log written by a background thread in batches; tests flush by hand.
WEBHOOK_RECORD_IN_BACKGROUND = env_bool("WEBHOOK_RECORD_IN_BACKGROUND", not TESTING)
WEBHOOK_RECORD_BATCH = env_int("WEBHOOK_RECORD_BATCH", 200)
WEBHOOK_RECORD_SECONDS = float(os.environ.get("WEBHOOK_RECORD_SECONDS", "1.0"))

# Overview pages and /metrics (liveadmin.rollup): log rows read per rollup run, and
# how old a row must be before it is counted (ids are handed out before commit).
OVERVIEW_ROLLUP_LIMIT = env_int("OVERVIEW_ROLLUP_LIMIT", 50_000)
OVERVIEW_ROLLUP_GRACE_SECONDS = env_int("OVERVIEW_ROLLUP_GRACE_SECONDS", 5)
# /metrics is off unless one of these is set: a bearer token, or client addresses
# (comma-separated IPs or networks such as 10.0.0.0/8).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [])
