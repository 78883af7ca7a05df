"""The test suite's settings: production settings (liveadmin/settings.py) plus the
overrides only tests want. pytest uses them (pyproject.toml), and so do the worker and
server processes the tests start (they inherit DJANGO_SETTINGS_MODULE and the
environment set here)."""

from __future__ import annotations

import os

# Fixed secrets, set before the production settings read them, and inherited by the
# processes the tests start so they decrypt what the test process encrypted.
os.environ.setdefault(
    "SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789"
)
os.environ.setdefault(
    "LIVEADMIN_ENCRYPTION_KEY", "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU="
)

from liveadmin.settings import *  # noqa: E402, F403
from liveadmin.settings import DATABASES, VAR_DIR  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: the Celery worker processes some tests start must share the
    # test database (they get it as DATABASE_URL=sqlite:///...).
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# No scheduler thread and no background decision writer: tests run and flush them.
EMBEDDED_SCHEDULER = False
WEBHOOK_RECORD_IN_BACKGROUND = False
# Rules read inside the test's transaction, in the calling thread.
WEBHOOK_REBUILD_IN_BACKGROUND = False
SANDBOX_ENABLED = True

# Static files straight from the source folders (no collectstatic); plain HTTP.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = True
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
