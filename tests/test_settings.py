from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "PYTEST_VERSION",
            "DEBUG",
            "SECRET_KEY",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
            # The production settings, not the tests' (tests/settings.py).
            "DJANGO_SETTINGS_MODULE",
        }
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "SECRET_KEY": "x" * 20
    + "production-like-secret-key-with-enough-entropy-0123456789",
    "LIVEADMIN_ENCRYPTION_KEY": "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0wMTIzNDU=",
    "ALLOWED_HOSTS": "liveadmin.example.com",
}


def test_it_passes_the_deploy_check_with_production_variables():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key_in_production():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_it_refuses_a_bad_boolean():
    result = run_manage("check", DEBUG="maybe", **PRODUCTION)
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_it_redacts_secrets_from_the_request_log():
    import logging

    from liveadmin.logging import RedactSecretsFilter

    handler = logging.getLogger("django.server").handlers
    assert handler, "django.server must log through the redacting handler"
    assert any(isinstance(f, RedactSecretsFilter) for h in handler for f in h.filters)
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" 200',
        ("POST /v4/x?usersig=eJyrVkosKMhLSTVJ&random=1",),
        None,
    )
    RedactSecretsFilter().filter(record)
    assert "eJyrVkosKMhLSTVJ" not in record.getMessage()
    assert "usersig=[redacted]" in record.getMessage()


def test_the_readme_lists_every_setting_read_from_the_environment():
    import re

    source = (ROOT / "liveadmin" / "settings.py").read_text()
    declared = set(
        re.findall(
            r'env_(?:str|bool|int|float|list|choice|int_map|secret)\(\s*"([A-Z_]+)"',
            source,
        )
    )
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.MULTILINE))
    assert len(declared) > 30
    assert declared <= listed, sorted(declared - listed)
    assert listed <= declared, (
        f"README lists settings that no longer exist: {sorted(listed - declared)}"
    )
    # Nothing reads the environment behind the helpers' back.
    assert "os.environ" not in source.split("# Where development secrets")[1]


def test_settings_have_no_getattr_fallbacks():
    for path in [*ROOT.glob("liveadmin/**/*.py"), *ROOT.glob("messaging/**/*.py")]:
        assert "getattr(settings" not in path.read_text(), path
    for path in ROOT.glob("webhooks/**/*.py"):
        assert "getattr(settings" not in path.read_text(), path
