"""Batches follow the send log's rule, for two community managers: each sees and acts
on the batches they made; broadcasts awaiting approval are visible to every manager
and only another manager approves one; administrators see every batch.

Every batch URL, GET and POST, for the author, the other manager and an
administrator; and no refused request changes anything.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from liveadmin.roles import Role
from messaging.models import Batch, BatchStatus, Outcome, SendRecord
from tests.conftest import client_for
from tests.factories import make_app, make_batch, make_user

# URL name -> whether it takes a batch id.
BATCH_URLS = {
    "batch-list": False,
    "batch-approvals": False,
    "batch-detail": True,
    "batch-cancel": True,
    "batch-pause": True,
    "batch-resume": True,
    "batch-resend": True,
    "batch-resend-unknown": True,
    "batch-approve": True,
}

# (URL name, method) -> status, for a running text batch, by who asks.
# "author": the manager who made it; "other": a second manager; "admin".
RUNNING = {
    ("batch-list", "get"): {"author": 200, "other": 200, "admin": 200},
    ("batch-list", "post"): {"author": 405, "other": 405, "admin": 405},
    ("batch-approvals", "get"): {"author": 200, "other": 200, "admin": 403},
    ("batch-approvals", "post"): {"author": 405, "other": 405, "admin": 405},
    ("batch-detail", "get"): {"author": 200, "other": 404, "admin": 200},
    ("batch-detail", "post"): {"author": 405, "other": 405, "admin": 405},
    ("batch-cancel", "get"): {"author": 200, "other": 404, "admin": 403},
    ("batch-cancel", "post"): {"author": 302, "other": 404, "admin": 403},
    ("batch-pause", "get"): {"author": 405, "other": 405, "admin": 405},
    ("batch-pause", "post"): {"author": 302, "other": 404, "admin": 403},
    ("batch-resume", "get"): {"author": 405, "other": 405, "admin": 405},
    ("batch-resume", "post"): {"author": 302, "other": 404, "admin": 403},
    ("batch-resend", "get"): {"author": 405, "other": 405, "admin": 405},
    ("batch-resend", "post"): {"author": 302, "other": 404, "admin": 403},
    ("batch-resend-unknown", "get"): {"author": 405, "other": 405, "admin": 405},
    ("batch-resend-unknown", "post"): {"author": 302, "other": 404, "admin": 403},
    ("batch-approve", "get"): {"author": 405, "other": 405, "admin": 405},
    ("batch-approve", "post"): {"author": 302, "other": 404, "admin": 403},
}

# The same for a broadcast awaiting approval: the other manager sees it and may
# approve it, but may not change it otherwise.
AWAITING = {
    **RUNNING,
    ("batch-detail", "get"): {"author": 200, "other": 200, "admin": 200},
    ("batch-detail", "post"): {"author": 405, "other": 405, "admin": 405},
    ("batch-cancel", "get"): {"author": 200, "other": 403, "admin": 403},
    ("batch-cancel", "post"): {"author": 302, "other": 403, "admin": 403},
    ("batch-pause", "post"): {"author": 302, "other": 403, "admin": 403},
    ("batch-resume", "post"): {"author": 302, "other": 403, "admin": 403},
    ("batch-resend", "post"): {"author": 302, "other": 403, "admin": 403},
    ("batch-resend-unknown", "post"): {"author": 302, "other": 403, "admin": 403},
    ("batch-approve", "post"): {"author": 302, "other": 302, "admin": 403},
}


@pytest.fixture
def people(db):
    return {
        "author": make_user("manager-a", role=Role.MANAGER),
        "other": make_user("manager-b", role=Role.MANAGER),
        "admin": make_user("admin-a", role=Role.ADMIN),
    }


def url_for(name: str, batch: Batch) -> str:
    args = [batch.pk] if BATCH_URLS[name] else []
    return reverse(f"messaging:{name}", args=args)


def state_of(batch: Batch) -> tuple:
    batch.refresh_from_db()
    return (
        batch.status,
        batch.approved_by_id,
        batch.cancelled_by_id,
        Batch.objects.filter(resend_of=batch).count(),
        tuple(SendRecord.objects.filter(batch=batch).values_list("outcome", flat=True)),
    )


def running_batch(author) -> Batch:
    batch = make_batch(actor=author, rooms=["a", "b", "c"])
    # One failed and one unknown room, so both re-send actions have work.
    SendRecord.objects.filter(batch=batch, room_id="a").update(outcome=Outcome.FAILED)
    SendRecord.objects.filter(batch=batch, room_id="b").update(outcome=Outcome.UNKNOWN)
    return batch


def awaiting_broadcast(author) -> Batch:
    app = make_app(broadcast_requires_approval=True)
    return make_batch(
        app, actor=author, kind="broadcast", rooms=[], fields={"text": "Maintenance"}
    )


@pytest.mark.parametrize("who", ["author", "other", "admin"])
@pytest.mark.parametrize(
    ("name", "method"), list(RUNNING), ids=[f"{n}-{m}" for n, m in RUNNING]
)
def test_it_allows_only_the_author_to_see_and_act_on_a_batch(people, who, name, method):
    batch = running_batch(people["author"])
    before = state_of(batch)
    response = getattr(client_for(people[who]), method)(url_for(name, batch))
    assert response.status_code == RUNNING[(name, method)][who]
    if response.status_code != 302 or name == "batch-approve":
        assert state_of(batch) == before


@pytest.mark.parametrize("who", ["author", "other", "admin"])
@pytest.mark.parametrize(
    ("name", "method"), list(AWAITING), ids=[f"{n}-{m}" for n, m in AWAITING]
)
def test_it_lets_another_manager_see_and_approve_a_waiting_broadcast(
    people, who, name, method
):
    batch = awaiting_broadcast(people["author"])
    before = state_of(batch)
    response = getattr(client_for(people[who]), method)(url_for(name, batch))
    assert response.status_code == AWAITING[(name, method)][who]
    if response.status_code != 302 or (name, who) == ("batch-approve", "author"):
        # Refused, or the author's own approval: answered with a message only.
        assert state_of(batch) == before
    if (name, method, who) == ("batch-approve", "post", "other"):
        batch.refresh_from_db()
        assert batch.status == BatchStatus.RUNNING
        assert batch.approved_by == people["other"]


def test_it_lists_only_the_batches_a_user_may_see(people):
    mine = running_batch(people["author"])
    waiting = awaiting_broadcast(people["author"])
    theirs = running_batch(people["other"])

    def listed(who: str, name: str) -> set[int]:
        response = client_for(people[who]).get(reverse(f"messaging:{name}"))
        return {
            b.pk
            for b in response.context["batches"]
            if b.pk in (mine.pk, theirs.pk, waiting.pk)
        }

    assert listed("author", "batch-list") == {mine.pk, waiting.pk}
    assert listed("other", "batch-list") == {theirs.pk, waiting.pk}
    assert listed("admin", "batch-list") == {mine.pk, theirs.pk, waiting.pk}
    assert listed("author", "batch-approvals") == {waiting.pk}
    assert listed("other", "batch-approvals") == {waiting.pk}


def test_it_counts_broadcasts_to_approve_in_the_navigation(people):
    awaiting_broadcast(people["author"])
    awaiting_broadcast(people["author"])
    page = client_for(people["other"]).get(reverse("messaging:batch-list"))
    approvals = reverse("messaging:batch-approvals")
    assert re.search(
        rf'href="{approvals}">Awaiting approval <span class="nav-count" data-count="2">',
        page.content.decode(),
    )
    # The author cannot approve their own: no count for them.
    page = client_for(people["author"]).get(reverse("messaging:batch-list"))
    body = page.content.decode()
    assert "Awaiting approval" in body and 'class="nav-count"' not in body
