from __future__ import annotations

import gc
import os

import pytest
from django.test import Client

from liveadmin.roles import Role
from tests.factories import make_user

# Database roles and privileges are PostgreSQL's: SQLite has neither (there,
# test_audit_chain checks that `dbroles` says so). CI runs them on PostgreSQL.
collect_ignore = (
    []
    if os.environ.get("DATABASE_URL", "").startswith(("postgres", "pgsql"))
    else ["test_db_roles.py"]
)


@pytest.fixture(autouse=True)
def fresh_webhook_state():
    """Each test starts with no compiled rules or buffered decisions from an earlier one: the
    webhook keeps both in process memory, and a rolled-back test can reuse a rules version."""
    from webhooks import background
    from webhooks.enforcement import escalator
    from webhooks.recent import recent
    from webhooks.recorder import recorder
    from webhooks.rules_cache import rules

    rules.reset()
    recorder.discard()
    recent.discard()
    escalator.reset()
    yield
    # A test that turned the writer threads on leaves none running (each keeps a
    # database connection).
    background.stop_all()
    recorder.discard()
    recent.discard()
    # RuleSet.compile and heap.freeze_once move what is alive out of the collector's
    # sight (a web worker keeps it for good); a test's leftovers go back to it.
    gc.unfreeze()


@pytest.fixture
def manager(db):
    return make_user("manager1", role=Role.MANAGER)


@pytest.fixture
def moderator(db):
    return make_user("moderator1", role=Role.MODERATOR)


@pytest.fixture
def auditor(db):
    return make_user("auditor1", role=Role.AUDITOR)


@pytest.fixture
def admin_user(db):
    return make_user("admin1", role=Role.ADMIN)


@pytest.fixture
def outsider(db):
    """Signed in, but holds no role."""
    return make_user("outsider1")


@pytest.fixture
def users(manager, moderator, auditor, admin_user, outsider) -> dict[str, object]:
    return {
        "manager": manager,
        "moderator": moderator,
        "auditor": auditor,
        "admin": admin_user,
        "outsider": outsider,
    }


def client_for(user) -> Client:
    """Signed in; with the second factor checked when the user has one."""
    client = Client()
    client.force_login(user)
    from django_otp import devices_for_user

    device = next(iter(devices_for_user(user)), None)
    if device is not None:
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
    return client
