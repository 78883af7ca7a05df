"""LiveAdmin settings, read from the environment.

Every setting is declared once, here, through the typed helpers below (they raise
ImproperlyConfigured on a bad value), and listed in the README's configuration table.
With nothing set, LiveAdmin runs on the embedded default: SQLite, a local-memory
cache, Celery tasks run without a broker, and the sandbox provider is mounted in
development. Production sets DATABASE_URL, REDIS_URL, CELERY_BROKER_URL, SECRET_KEY,
LIVEADMIN_ENCRYPTION_KEY and ALLOWED_HOSTS. The tests' overrides live in
tests/settings.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip()


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


_N = TypeVar("_N", int, float)


def _env_number(name: str, default: _N, parse: Callable[[str], _N], what: str) -> _N:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {what}, not {raw!r}") from None


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(
            f"{name} must be one of {', '.join(choices)}, not {value!r}"
        )
    return value


def env_int_map(name: str) -> dict[str, int]:
    """``name1=3,name2=5`` as a dict; empty or unset is {}."""
    result: dict[str, int] = {}
    for item in env_list(name, []):
        key, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise ImproperlyConfigured(
                f"{name} must look like name=3,other=5, not {item!r}"
            )
        result[key.strip()] = int(value)
    return result


def env_secret(
    name: str, *, dev_file: str, debug: bool, generate: Callable[[], str]
) -> str:
    """Read a secret from the environment.

    In development (DEBUG on) a missing secret is generated once into a file under
    var/ (outside git) so a fresh checkout runs without setup; in production it is
    an error to leave it unset.
    """
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if not debug:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")
    path = VAR_DIR / dev_file
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


# Where development secrets and the default SQLite database live.
VAR_DIR = Path(env_str("LIVEADMIN_VAR_DIR", str(BASE_DIR / "var")))


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
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "liveadmin",
    "messaging",
    "messaging.sandbox",
    "webhooks",
]

MIDDLEWARE = [
    # First: the sandbox's rate limits count a call from its arrival.
    "liveadmin.arrival.ArrivalMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language, unless the person picked one (liveadmin.language).
    "django.middleware.locale.LocaleMiddleware",
    "liveadmin.language.SessionLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "liveadmin.middleware.RequireSecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lock into the lock page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked account/address before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "liveadmin.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
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
# Password `manage.py dbroles` gives the application's least-privilege role (empty:
# the role keeps its password, or has none).
LIVEADMIN_DB_PASSWORD = env_str("LIVEADMIN_DB_PASSWORD")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault(
        "OPTIONS", {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
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
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
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
    # The overview's per-minute counts (liveadmin/rollup.py).
    "rollup-counts": {
        "task": "liveadmin.tasks.rollup_counts",
        "schedule": float(SEND_TICK_SECONDS),
    },
    # Recent webhook messages older than RECENT_MESSAGES_SECONDS (dry runs).
    "purge-recent-messages": {
        "task": "webhooks.tasks.purge_recent_messages",
        "schedule": 600.0,
    },
}
# The audit log's hash chain: how often new final sends are linked, and how often
# the whole chain is verified (the auditor's log page shows the last result).
AUDIT_LINK_SECONDS = env_int("AUDIT_LINK_SECONDS", 10)
AUDIT_VERIFY_SECONDS = env_int("AUDIT_VERIFY_SECONDS", 3600)
CELERY_BEAT_SCHEDULE["link-audit-chain"] = {
    "task": "messaging.tasks.link_audit_chain",
    "schedule": float(AUDIT_LINK_SECONDS),
}
CELERY_BEAT_SCHEDULE["verify-audit-chain"] = {
    "task": "messaging.tasks.verify_audit_chain",
    "schedule": float(AUDIT_VERIFY_SECONDS),
}
# A claimed send with no answer after this long belongs to a dead worker: it may
# have reached the provider, so its outcome becomes `unknown` (re-sent only for a
# broadcast, whose Random the provider de-duplicates, or an at-least-once app).
SEND_CLAIM_TIMEOUT = env_int("SEND_CLAIM_TIMEOUT", 120)
# Attempts per room for a provider's retryable answer codes. A request that surely
# did not reach the provider (connection refused, DNS) is retried without a cap
# until the outage lasts BATCH_OUTAGE_PAUSE_SECONDS.
SEND_MAX_ATTEMPTS = env_int("SEND_MAX_ATTEMPTS", 5)
# A batch pauses itself after this many permanent failures in a row (per batch too).
BATCH_PAUSE_AFTER_FAILURES = env_int("BATCH_PAUSE_AFTER_FAILURES", 20)
# A batch backs off and probes through transient failures (network, 5xx, provider
# busy, Redis gone), and pauses only once they have lasted this long.
BATCH_OUTAGE_PAUSE_SECONDS = env_int("BATCH_OUTAGE_PAUSE_SECONDS", 600)
# Runner tasks per batch (they share the rows and the rate budget; more than one
# lets several workers carry a batch, and one survive the other's death).
BATCH_RUNNERS = env_int("BATCH_RUNNERS", 2)
# Rows a runner claims at once (claimed just before they go out), and the most
# requests one runner keeps in flight (its threads wait on the network).
BATCH_GROUP_SIZE = env_int("BATCH_GROUP_SIZE", 16)
BATCH_IN_FLIGHT = env_int("BATCH_IN_FLIGHT", 32)
# Sends are paced this fraction under each provider limit (network jitter) with
# no burst, so bulk sends meet no frequency-limit errors (messaging/ratelimit.py).
RATE_LIMIT_HEADROOM = env_float("RATE_LIMIT_HEADROOM", 0.05)
# Seconds of the rate a bucket may hold ahead (a burst); 0: one token, no burst.
RATE_LIMIT_BURST_SECONDS = env_float("RATE_LIMIT_BURST_SECONDS", 0.0)
# With Redis unreachable each process keeps to 1/N of a shared rate, N being the
# processes last seen drawing from it and at least this many (a peer that has not
# drawn lately is not seen).
RATE_LIMIT_FALLBACK_PEERS = env_int("RATE_LIMIT_FALLBACK_PEERS", 4)
# Embedded default (no broker): threads sending in the web process.
EMBEDDED_WORKERS = env_int("EMBEDDED_WORKERS", 4)
EMBEDDED_SCHEDULER = env_bool("EMBEDDED_SCHEDULER", True)

# The sandbox provider is a product feature (a test mode), on by default in development.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)
# Where the documentation leaves the sandbox a choice (docs/providers.md, UNCONFIRMED):
# one message's limit (12 KB now; older pages say 8 KB), the broadcast de-duplication
# key ("content": sender, Random and content; "random": sender and Random), single
# rate limits to override (live_engine=200,broadcast=1,zego=100,zego_test=10,room=40),
# the seconds a rate slot is held, and the before-send callback's timeout.
SANDBOX_MAX_MESSAGE_BYTES = env_int("SANDBOX_MAX_MESSAGE_BYTES", 12 * 1024)
SANDBOX_BROADCAST_DEDUP = env_choice(
    "SANDBOX_BROADCAST_DEDUP", "content", ("content", "random")
)
SANDBOX_RATE_LIMITS = env_int_map("SANDBOX_RATE_LIMITS")
SANDBOX_RATE_WINDOW = env_int("SANDBOX_RATE_WINDOW", 1)
SANDBOX_CALLBACK_TIMEOUT = env_float("SANDBOX_CALLBACK_TIMEOUT", 2.0)

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-in throttling (django-axes, liveadmin/signin.py): this many failures within
# SIGNIN_LOCK_MINUTES lock the account for that address for SIGNIN_LOCK_MINUTES.
SIGNIN_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 5)
SIGNIN_LOCK_MINUTES = env_int("SIGNIN_LOCK_MINUTES", 15)
AXES_FAILURE_LIMIT = SIGNIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=SIGNIN_LOCK_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "liveadmin.signin.locked_out"
# Successful sign-ins are in the auth log already; keep axes' table to failures.
AXES_DISABLE_ACCESS_LOG = True
# The second factor (TOTP, django-otp): the name authenticator apps show.
OTP_TOTP_ISSUER = "LiveAdmin"

# Content-Security-Policy (django-csp): scripts, styles and everything else from
# this site only; no inline script anywhere. Inline style attributes stay allowed:
# progress bars set widths, and htmx adds its indicator style.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
# The languages of the pages; catalogues in locale/ (`make messages` updates them).
LANGUAGES = [
    ("en", "English"),
    ("zh-hans", "简体中文"),
    ("ko", "한국어"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve straight from the source folders in development and tests (no collectstatic).
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG

# Production hardening; `manage.py check --deploy` is clean with DEBUG off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# The provider calls the webhook over plain HTTP inside private networks too.
SECURE_REDIRECT_EXEMPT = [r"^webhooks/", r"^sandbox/"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

LOG_LEVEL = env_choice(
    "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "liveadmin.logging.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # httpx logs every request URL at INFO, and a Tencent URL carries the usersig.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # runserver's request log prints full URLs (usersig=, Signature=): send it
        # through the redacting handler instead of Django's own.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The dashboard's access log under the production server (liveadmin/access_log.py).
        "liveadmin.access": {
            "handlers": ["console"],
            "level": "INFO" if env_bool("ACCESS_LOG", True) else "CRITICAL",
            "propagate": False,
        },
    },
}

# Decisions older than this many days are removed by `manage.py purgedecisions`
# (run as the database owner), which records what it removed.
DECISION_RETENTION_DAYS = env_int("DECISION_RETENTION_DAYS", 180)

# Before-send webhook (webhooks/hotpath.py).
WEBHOOK_MAX_BODY = env_int("WEBHOOK_MAX_BODY", 1024 * 1024)
# How old a signed call's RequestTime may be, in seconds. The provider documents no
# replay window (docs/providers.md, UNCONFIRMED): 300 s tolerates clock skew and retries.
WEBHOOK_SIGN_MAX_AGE = env_int("WEBHOOK_SIGN_MAX_AGE", 300)
# How often a process checks the rules version (Redis GET, or a DB read without Redis).
WEBHOOK_VERSION_CHECK_SECONDS = env_float(
    "WEBHOOK_VERSION_CHECK_SECONDS", 0.5 if REDIS_URL else 1.0
)
# A change made by another process is compiled in a background thread while calls are
# answered from the current rules (tests/settings.py: built in the calling thread, inside
# the test's transaction).
WEBHOOK_REBUILD_IN_BACKGROUND = env_bool("WEBHOOK_REBUILD_IN_BACKGROUND", True)
# Decision log written by a background thread in batches; tests flush by hand.
WEBHOOK_RECORD_IN_BACKGROUND = env_bool("WEBHOOK_RECORD_IN_BACKGROUND", True)
# A writer wakes early once this many calls are pending. Measured with wrk -c16 against
# the Procfile's web line (bench/webhook_load.py's load): 200 gave 7,900 req/s and p99
# 6.8 ms, 2,000 gave 8,800 req/s and p99 9-10 ms, 20,000 p99 26 ms (a flush that long
# holds the event loop's thread).
WEBHOOK_RECORD_BATCH = env_int("WEBHOOK_RECORD_BATCH", 2000)
WEBHOOK_RECORD_SECONDS = env_float("WEBHOOK_RECORD_SECONDS", 1.0)
# Decision rows kept in memory while the database refuses writes (the oldest go first).
WEBHOOK_RECORD_MAX_PENDING = env_int("WEBHOOK_RECORD_MAX_PENDING", 100_000)

# Moderation (webhooks/recent.py, webhooks/moderation.py).
# Keep the apps' recent messages (allowed ones included) for dry runs of draft
# entries: a Redis list per app with REDIS_URL, process memory without.
RECENT_MESSAGES_ENABLED = env_bool("RECENT_MESSAGES_ENABLED", True)
RECENT_MESSAGES_SECONDS = env_int("RECENT_MESSAGES_SECONDS", 24 * 3600)
RECENT_MESSAGES_MAX = env_int("RECENT_MESSAGES_MAX", 100_000)

# Overview pages and /metrics (liveadmin.rollup): log rows read per rollup run, and
# how old a row must be before it is counted (ids are handed out before commit).
OVERVIEW_ROLLUP_LIMIT = env_int("OVERVIEW_ROLLUP_LIMIT", 50_000)
OVERVIEW_ROLLUP_GRACE_SECONDS = env_int("OVERVIEW_ROLLUP_GRACE_SECONDS", 5)
# Count what is new when the overview or /metrics is opened. Needed when no Celery
# beat runs the rollup (the embedded default); with a broker, beat keeps them current.
OVERVIEW_ROLLUP_ON_VIEW = env_bool("OVERVIEW_ROLLUP_ON_VIEW", not CELERY_BROKER_URL)
# /metrics is off unless one of these is set: a bearer token, or client addresses
# (comma-separated IPs or networks such as 10.0.0.0/8).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [])
