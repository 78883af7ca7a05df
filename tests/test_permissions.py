"""Every URL × every role: allowed, 403, or a redirect to the login page.

Add a row to ROUTES for each new page; the matrix test covers it from then on.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.conftest import client_for
from tests.factories import make_app, make_batch, make_send_record

pytestmark = pytest.mark.django_db

ALL_ROLES = ["manager", "moderator", "auditor", "admin", "outsider"]


def _managers_send(ctx):
    """A send made by the matrix's manager (managers open only their own)."""
    user = get_user_model().objects.filter(username="manager1").first()
    return make_send_record(app=ctx["app"], **({"user": user} if user else {}))


# (name, method, url builder, roles allowed)
ROUTES: list[tuple[str, str, callable, set[str]]] = [
    (
        "home",
        "get",
        lambda ctx: reverse("home"),
        {"manager", "moderator", "auditor", "admin", "outsider"},
    ),
    ("app-list", "get", lambda ctx: reverse("messaging:app-list"), {"admin"}),
    ("app-create", "get", lambda ctx: reverse("messaging:app-create"), {"admin"}),
    (
        "app-edit",
        "get",
        lambda ctx: reverse("messaging:app-edit", args=[ctx["app"].pk]),
        {"admin"},
    ),
    (
        "app-toggle",
        "post",
        lambda ctx: reverse("messaging:app-toggle", args=[ctx["app"].pk]),
        {"admin"},
    ),
    ("audit", "get", lambda ctx: reverse("messaging:audit"), {"manager", "auditor"}),
    (
        "audit-detail",
        "get",
        lambda ctx: reverse("messaging:audit-detail", args=[_managers_send(ctx).pk]),
        {"manager", "auditor"},
    ),
    (
        "audit-export",
        "get",
        lambda ctx: reverse("messaging:audit-export"),
        {"manager", "auditor"},
    ),
    # webhooks: moderator pages and the auditors' blocklist history
    (
        "blocklist-list",
        "get",
        lambda ctx: reverse("webhooks:blocklist-list"),
        {"moderator"},
    ),
    (
        "blocklist-create",
        "post",
        lambda ctx: reverse("webhooks:blocklist-create"),
        {"moderator"},
    ),
    (
        "blocklist-detail",
        "get",
        lambda ctx: reverse("webhooks:blocklist-detail", args=[ctx["blocklist"].pk]),
        {"moderator"},
    ),
    (
        "blocklist-edit",
        "get",
        lambda ctx: reverse("webhooks:blocklist-edit", args=[ctx["blocklist"].pk]),
        {"moderator"},
    ),
    (
        "blocklist-delete",
        "post",
        lambda ctx: reverse("webhooks:blocklist-delete", args=[ctx["blocklist"].pk]),
        {"moderator"},
    ),
    (
        "blocklist-import",
        "get",
        lambda ctx: reverse("webhooks:blocklist-import", args=[ctx["blocklist"].pk]),
        {"moderator"},
    ),
    (
        "blocklist-export",
        "get",
        lambda ctx: reverse("webhooks:blocklist-export", args=[ctx["blocklist"].pk]),
        {"moderator"},
    ),
    (
        "entry-create",
        "post",
        lambda ctx: reverse("webhooks:entry-create", args=[ctx["blocklist"].pk]),
        {"moderator"},
    ),
    (
        "entry-row",
        "get",
        lambda ctx: reverse("webhooks:entry-row", args=[ctx["entry"].pk]),
        {"moderator"},
    ),
    (
        "entry-edit",
        "get",
        lambda ctx: reverse("webhooks:entry-edit", args=[ctx["entry"].pk]),
        {"moderator"},
    ),
    (
        "entry-toggle",
        "post",
        lambda ctx: reverse("webhooks:entry-toggle", args=[ctx["entry"].pk]),
        {"moderator"},
    ),
    (
        "entry-delete",
        "post",
        lambda ctx: reverse("webhooks:entry-delete", args=[ctx["entry"].pk]),
        {"moderator"},
    ),
    ("try", "get", lambda ctx: reverse("webhooks:try"), {"moderator"}),
    (
        "decision-list",
        "get",
        lambda ctx: reverse("webhooks:decision-list"),
        {"moderator", "auditor"},  # auditors read the decision log (issue 11)
    ),
    (
        "decision-export",
        "get",
        lambda ctx: reverse("webhooks:decision-export"),
        {"moderator", "auditor"},
    ),
    (
        "change-export",
        "get",
        lambda ctx: reverse("webhooks:change-export"),
        {"auditor"},
    ),
    ("change-list", "get", lambda ctx: reverse("webhooks:change-list"), {"auditor"}),
    (
        "batch-list",
        "get",
        lambda ctx: reverse("messaging:batch-list"),
        {"manager", "admin"},
    ),
    (
        "batch-approvals",
        "get",
        lambda ctx: reverse("messaging:batch-approvals"),
        {"manager"},
    ),
    (
        "batch-detail",
        "get",
        lambda ctx: reverse("messaging:batch-detail", args=[ctx["batch"].pk]),
        {"manager", "admin"},
    ),
    (
        "batch-cancel-confirm",
        "get",
        lambda ctx: reverse("messaging:batch-cancel", args=[ctx["batch"].pk]),
        {"manager"},
    ),
    *[
        (
            f"batch-{action}",
            "post",
            lambda ctx, action=action: reverse(
                f"messaging:batch-{action}", args=[ctx["batch"].pk]
            ),
            {"manager"},
        )
        for action in ("cancel", "pause", "resume", "resend", "resend-unknown")
    ],
    (
        "batch-approve",
        "post",
        lambda ctx: reverse("messaging:batch-approve", args=[ctx["approval"].pk]),
        {"manager"},
    ),
    (
        "sandbox-rooms",
        "get",
        lambda ctx: reverse("sandbox:rooms") + f"?q={_sandbox(ctx)['room'].room_id}",
        {"manager", "moderator", "admin"},
    ),
    (
        "sandbox-room-create",
        "post",
        lambda ctx: reverse("sandbox:room-create"),
        {"admin"},
    ),
    (
        "sandbox-app-mirror",
        "post",
        lambda ctx: reverse("sandbox:app-mirror"),
        {"admin"},
    ),
    (
        "sandbox-room-mute",
        "post",
        lambda ctx: reverse("sandbox:room-mute", args=[_sandbox(ctx)["room"].pk]),
        {"admin"},
    ),
    (
        "sandbox-room-unmute",
        "post",
        lambda ctx: reverse(
            "sandbox:room-unmute",
            args=[_sandbox(ctx)["room"].pk, _sandbox(ctx)["muted"].pk],
        ),
        {"admin"},
    ),
]


# Send page and message templates (sendui).
def _template_pk(ctx: dict) -> int:
    """A template, made on first use so the shared ``ctx`` fixture stays as it is."""
    from messaging.models import MessageTemplate

    if "template" not in ctx:
        ctx["template"] = MessageTemplate.objects.create(
            name="Permissions", kind="text", fields={"text": "Hello {name}"}
        )
    return ctx["template"].pk


ROUTES += [
    ("send", "get", lambda ctx: reverse("messaging:send"), {"manager"}),
    (
        "send-app",
        "get",
        lambda ctx: reverse("messaging:send") + f"?app={ctx['app'].pk}",
        {"manager"},
    ),
    ("send-post", "post", lambda ctx: reverse("messaging:send"), {"manager"}),
    (
        "template-list",
        "get",
        lambda ctx: reverse("messaging:template-list"),
        {"manager"},
    ),
    (
        "template-create",
        "get",
        lambda ctx: reverse("messaging:template-create"),
        {"manager"},
    ),
    (
        "template-edit",
        "get",
        lambda ctx: reverse("messaging:template-edit", args=[_template_pk(ctx)]),
        {"manager"},
    ),
    (
        "template-delete",
        "get",
        lambda ctx: reverse("messaging:template-delete", args=[_template_pk(ctx)]),
        {"manager"},
    ),
    (
        "template-delete-post",
        "post",
        lambda ctx: reverse("messaging:template-delete", args=[_template_pk(ctx)]),
        {"manager"},
    ),
]


def _sandbox(ctx: dict) -> dict:
    """A sandbox room with a muted member, made on first use (sandbox rows)."""
    from messaging.sandbox.services import mute_member
    from tests.factories import make_sandbox_app

    if "sandbox_room" not in ctx:
        sandbox = make_sandbox_app(ctx["app"], rooms=("room-1",))
        ctx["sandbox_room"] = sandbox.rooms.get()
        ctx["sandbox_muted"] = mute_member(sandbox, "room-1", "host1", 600)
    return {"room": ctx["sandbox_room"], "muted": ctx["sandbox_muted"]}


@pytest.fixture
def ctx(db, manager):
    from webhooks.models import Blocklist, BlocklistEntry

    blocklist = Blocklist.objects.create(name="Permissions list")
    entry = BlocklistEntry.objects.create(blocklist=blocklist, term="perm-word")
    # The manager's own batch; a broadcast another manager submitted for approval.
    approving = make_app(broadcast_requires_approval=True)
    return {
        "app": make_app(),
        "blocklist": blocklist,
        "entry": entry,
        "batch": make_batch(actor=manager),
        "approval": make_batch(
            approving, kind="broadcast", rooms=[], fields={"text": "Maintenance"}
        ),
    }


@pytest.mark.parametrize("route", ROUTES, ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("role", ALL_ROLES)
def test_it_enforces_roles(route, role, users, ctx):
    _, method, build, allowed = route
    response = getattr(client_for(users[role]), method)(build(ctx))
    if role in allowed:
        assert response.status_code in (200, 302), response.status_code
        if response.status_code == 302:
            assert not response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("route", ROUTES, ids=[r[0] for r in ROUTES])
def test_it_sends_anonymous_users_to_login(route, client, ctx):
    _, method, build, _ = route
    url = build(ctx)
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
