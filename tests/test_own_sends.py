"""End to end: a message LiveAdmin sends goes through the sandbox provider, which calls
LiveAdmin's webhook; the send's result and log entry say what the webhook did, with a
link to the decision, and the decision links back."""

from __future__ import annotations

import pytest
from django.urls import reverse

from liveadmin.roles import Role
from messaging.services.sending import send_message
from tests.conftest import client_for
from tests.factories import make_app, make_sandbox_app, make_user
from webhooks import services
from webhooks.models import Decision
from webhooks.recorder import recorder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_app(live_server):
    app = make_app(base_url=live_server.url + "/sandbox", identifier="administrator")
    # Empty callback URL: the sandbox calls this site's /webhooks/tencent.
    make_sandbox_app(app, rooms=("room-1",))
    return app


@pytest.mark.parametrize(
    "action,verb,outcome",
    [
        ("mask", "masked by the webhook", "ok"),
        ("discard", "discarded by the webhook", "ok"),
        ("forbid", "forbidden by the webhook", "failed"),
    ],
)
def test_a_send_says_what_the_webhook_did(live_app, action, verb, outcome):
    manager = make_user(role=Role.MANAGER)
    moderator = make_user(role=Role.MODERATOR)
    lists = services.create_list("Own", app=None)
    services.add_entry(lists, term="darn", action=action)
    # A viewer says the same thing in the same room: not LiveAdmin's send.
    from django.test import Client

    from tests.webhook_support import post_webhook, text_body, webhook_url

    post_webhook(Client(), webhook_url(live_app), text_body("darn it", sender="host1"))
    record, _result = send_message(
        live_app,
        "text",
        {"room_id": "room-1", "sender": "host1", "text": "darn it"},
        actor=manager,
    )
    record.refresh_from_db()
    assert record.outcome == outcome
    recorder.flush()
    ours = Decision.objects.get(own_send=True)
    assert Decision.objects.filter(own_send=False).count() == 1
    client = client_for(manager)
    html = client.get(
        reverse("messaging:audit-detail", args=[record.pk])
    ).content.decode()
    assert verb in html
    assert reverse("webhooks:decision-detail", args=[ours.pk]) in html
    fragment = client.get(
        reverse("webhooks:send-decision", args=[record.pk])
    ).content.decode()
    assert f'data-webhook-action="{action}"' in fragment
    ours.refresh_from_db()
    assert ours.send_record_id == record.pk
    url = reverse("webhooks:decision-detail", args=[ours.pk])
    assert client_for(manager).get(url).status_code == 403
    assert f"send #{record.pk} by" in client_for(moderator).get(url).content.decode()
