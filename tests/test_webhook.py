"""The before-send webhook through the real view, with the provider's query string."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time

import pytest
from django.db import OperationalError
from django.db.models import F
from django.test import Client

from tests.factories import make_app
from tests.webhook_support import (
    AFTER,
    OK,
    post_webhook,
    sign,
    text_body,
    webhook_url,
)
from webhooks import hotpath, rules_cache, services, version
from webhooks.models import (
    BlocklistEntry,
    Decision,
    DecisionCount,
    RejectionCount,
)
from webhooks.recorder import recorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(db):
    return make_app(name="live-app")


@pytest.fixture
def shared(db):
    return services.create_list("Shared", app=None)


def add(blocklist, term, **fields):
    return services.add_entry(blocklist, term=term, **fields)


def call(app, body, **url_opts):
    return post_webhook(Client(), webhook_url(app, **url_opts), body)


# --- decisions ------------------------------------------------------------------------


def test_it_allows_a_clean_message(app, shared):
    add(shared, "spam")
    response = call(app, text_body("hello everyone"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == OK


def test_it_forbids_a_listed_word(app, shared):
    add(shared, "spam")
    response = call(app, text_body("buy SPAM now"))
    assert response.json() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}


def test_it_forbids_with_the_moderators_code_and_text(app, shared):
    add(shared, "casino", action="forbid_code", code=10150, info="No gambling links")
    response = call(app, text_body("best casino here"))
    assert response.json() == {
        "ActionStatus": "OK",
        "ErrorInfo": "No gambling links",
        "ErrorCode": 10150,
    }


def test_it_discards_silently(app, shared):
    add(shared, "follow me", action="discard")
    response = call(app, text_body("pls follow me"))
    assert response.json() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 2}


def test_it_masks_text_and_leaves_other_elements_untouched(app, shared):
    add(shared, "darn", action="mask")
    custom = {
        "MsgType": "TIMCustomElem",
        "MsgContent": {"Desc": "CustomElement.MemberLevel", "Data": "LV1"},
    }
    body = text_body(
        elements=[
            {"MsgType": "TIMTextElem", "MsgContent": {"Text": "oh darn it"}},
            custom,
        ],
        cloud_custom_data='{"ExtensionInfo":"darn"}',
    )
    response = call(app, body)
    assert response.json() == {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
        "MsgBody": [
            {"MsgType": "TIMTextElem", "MsgContent": {"Text": "oh **** it"}},
            custom,
        ],
        "CloudCustomData": '{"ExtensionInfo":"****"}',
    }


def test_it_forbids_a_blocked_user_whatever_the_text(app, shared):
    add(shared, "troll-42", kind="user")
    assert call(app, text_body("hi", sender="troll-42")).json()["ErrorCode"] == 1
    assert call(app, text_body("hi", sender="troll-43")).json() == OK


def test_it_looks_inside_a_custom_message(app, shared):
    add(shared, "badword", action="discard")
    wrapped = json.dumps({"BusinessId": "gift", "Data": "a badword inside"})
    body = text_body(
        elements=[{"MsgType": "TIMCustomElem", "MsgContent": {"Data": wrapped}}]
    )
    assert call(app, body).json()["ErrorCode"] == 2


def test_it_uses_only_the_apps_own_lists_and_the_shared_ones(app, shared):
    other = make_app(name="other-app")
    own = services.create_list("Other only", app=other)
    add(own, "otherword")
    assert call(app, text_body("otherword")).json() == OK
    assert call(other, text_body("otherword")).json()["ErrorCode"] == 1


def test_it_ignores_disabled_and_expired_entries(app, shared):
    entry = add(shared, "gone")
    services.set_entry_enabled(entry, False)
    add(shared, "old", expires_at=_past())
    assert call(app, text_body("gone old")).json() == OK


def _past():
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(minutes=1)


def test_it_acknowledges_after_send_and_other_commands(app, shared):
    add(shared, "spam")
    after = text_body("spam") | {"CallbackCommand": AFTER, "MsgSeq": 7, "MsgTime": 1}
    assert call(app, after, command=AFTER).json() == OK
    join = {"CallbackCommand": "Group.CallbackAfterNewMemberJoin", "GroupId": "r"}
    assert call(app, join, command="Group.CallbackAfterNewMemberJoin").json() == OK


# --- signature ----------------------------------------------------------------------


@pytest.fixture
def signed_app(db):
    return make_app(name="signed", webhook_token="tok-123")


def test_it_accepts_a_good_signature(signed_app):
    assert call(signed_app, text_body(), token="tok-123").json() == OK


def test_it_accepts_an_upper_case_signature(signed_app):
    now = int(time.time())
    url = (
        webhook_url(signed_app)
        + f"&Sign={sign('tok-123', now).upper()}&RequestTime={now}"
    )
    assert post_webhook(Client(), url, text_body()).json() == OK


def test_it_refuses_a_wrong_signature(signed_app):
    response = call(signed_app, text_body(), token="not-the-token")
    assert response.status_code == 401
    assert response.json() == {"error": "wrong Sign"}


def test_it_refuses_a_missing_signature(signed_app):
    response = call(signed_app, text_body())
    assert response.status_code == 401
    assert response.json() == {
        "error": "Sign and RequestTime are required for this app"
    }


def test_it_refuses_a_stale_signature(signed_app):
    stale = int(time.time()) - 301
    response = call(signed_app, text_body(), token="tok-123", request_time=stale)
    assert response.status_code == 401
    assert response.json() == {"error": "RequestTime is too old or in the future"}


def test_it_matches_the_documented_formula():
    # docs/providers.md, "Before-send webhook": sha256("xxxyyy1669872112"), computed independently.
    assert hotpath.valid_sign(
        "xxxyyy",
        "1669872112",
        "e78a85473bed2cdc8d6fa8c4d5a4ba4735fd64156e15a99516b9890293e135de",
    )


# --- bad input ----------------------------------------------------------------------

BIG = b'{"GroupId":"' + b"x" * (1024 * 1024) + b'"}'

# (case id, how to build the request, expected status, error, counted reason)
BAD = [
    (
        "not-json",
        lambda a: ("post", webhook_url(a), b"{nope"),
        400,
        "body is not JSON",
        "bad_json",
    ),
    (
        "not-utf8",
        lambda a: ("post", webhook_url(a), b"\xff\xfe"),
        400,
        "body is not JSON",
        "bad_json",
    ),
    (
        "deeply-nested",
        lambda a: ("post", webhook_url(a), b"[" * 200_000),
        400,
        "body is not JSON",
        "bad_json",
    ),
    (
        "json-array",
        lambda a: ("post", webhook_url(a), b"[1]"),
        400,
        "body must be a JSON object",
        "bad_json",
    ),
    (
        "empty-body",
        lambda a: ("post", webhook_url(a), b""),
        400,
        "body is not JSON",
        "bad_json",
    ),
    (
        "no-group",
        lambda a: ("post", webhook_url(a), _without("GroupId")),
        400,
        "GroupId is missing",
        "bad_field",
    ),
    (
        "group-not-string",
        lambda a: ("post", webhook_url(a), _with(GroupId=5)),
        400,
        "GroupId must be a string",
        "bad_field",
    ),
    (
        "no-sender",
        lambda a: ("post", webhook_url(a), _without("From_Account")),
        400,
        "From_Account is missing",
        "bad_field",
    ),
    (
        "no-msgbody",
        lambda a: ("post", webhook_url(a), _without("MsgBody")),
        400,
        "MsgBody is missing",
        "bad_field",
    ),
    (
        "msgbody-object",
        lambda a: ("post", webhook_url(a), _with(MsgBody={"Text": "x"})),
        400,
        "MsgBody must be an array",
        "bad_field",
    ),
    (
        "element-no-content",
        lambda a: ("post", webhook_url(a), _with(MsgBody=[{"MsgType": "TIMTextElem"}])),
        400,
        "MsgBody[0] must be an object with MsgType (string) and MsgContent (object)",
        "bad_field",
    ),
    (
        "ccd-not-string",
        lambda a: ("post", webhook_url(a), _with(CloudCustomData={"a": 1})),
        400,
        "CloudCustomData must be a string",
        "bad_field",
    ),
    (
        "random-string",
        lambda a: ("post", webhook_url(a), _with(Random="12")),
        400,
        "Random must be a 32-bit unsigned integer",
        "bad_field",
    ),
    (
        "command-mismatch",
        lambda a: ("post", webhook_url(a), _with(CallbackCommand=AFTER)),
        400,
        "CallbackCommand differs between URL and body",
        "command_mismatch",
    ),
    (
        "no-sdkappid",
        lambda a: (
            "post",
            webhook_url(a).replace(f"SdkAppid={a.app_id}&", ""),
            _with(),
        ),
        400,
        "SdkAppid is missing",
        "bad_sdkappid",
    ),
    (
        "sdkappid-text",
        lambda a: (
            "post",
            webhook_url(a).replace(f"SdkAppid={a.app_id}", "SdkAppid=abc"),
            _with(),
        ),
        400,
        "SdkAppid must be a number",
        "bad_sdkappid",
    ),
    (
        "no-command",
        lambda a: (
            "post",
            webhook_url(a).replace("CallbackCommand=Group.CallbackBeforeSendMsg&", ""),
            _with(),
        ),
        400,
        "CallbackCommand is missing",
        "no_command",
    ),
    (
        "unknown-app",
        lambda a: ("post", webhook_url(1234567), _with()),
        403,
        "unknown or disabled SdkAppid",
        "unknown_app",
    ),
    (
        "too-large",
        lambda a: ("post", webhook_url(a), BIG),
        413,
        "body over 1 MB",
        "too_large",
    ),
    ("get", lambda a: ("get", webhook_url(a), None), 405, "use POST", "bad_method"),
    ("put", lambda a: ("put", webhook_url(a), b"{}"), 405, "use POST", "bad_method"),
    (
        "bad-request-time",
        lambda a: ("post", webhook_url(a) + "&Sign=abc&RequestTime=soon", _with()),
        400,
        "RequestTime must be Unix seconds",
        "bad_request_time",
    ),
]


def _with(**fields):
    return json.dumps(text_body() | fields).encode()


def _without(name):
    body = text_body()
    del body[name]
    return json.dumps(body).encode()


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_it_answers_each_bad_input_with_a_counted_json_error(case, db):
    case_id, build, status, message, reason = case
    app = make_app(
        name="strict", webhook_token="t" if case_id == "bad-request-time" else ""
    )
    method, url, data = build(app)
    client = Client()
    if method == "get":
        response = client.get(url)
    else:
        response = getattr(client, method)(
            url, data=data, content_type="application/json"
        )
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": message}
    recorder.flush()
    assert list(RejectionCount.objects.values_list("reason", "count")) == [(reason, 1)]


def test_it_refuses_a_disabled_app(app):
    app.enabled = False
    app.save()
    response = call(app, text_body())
    assert response.status_code == 403
    assert response.json() == {"error": "unknown or disabled SdkAppid"}


# --- internal failure -------------------------------------------------------------------


def _corrupt_entry(blocklist):
    """A stored entry the rules cannot be built from (written past the services)."""
    entry = add(blocklist, "fine")
    BlocklistEntry.objects.filter(pk=entry.pk).update(kind="corrupt")
    version.bump()


def test_it_fails_open_by_default_and_logs(app, shared, caplog):
    _corrupt_entry(shared)
    with caplog.at_level(logging.ERROR, logger="webhooks.hotpath"):
        response = call(app, text_body("anything"))
    assert response.status_code == 200
    assert response.json() == OK
    assert "internal failure for app live-app (fail-open)" in caplog.text


def test_it_fails_closed_when_the_app_says_so(shared, caplog):
    closed = make_app(name="closed", webhook_fail_closed=True)
    _corrupt_entry(shared)
    with caplog.at_level(logging.ERROR, logger="webhooks.hotpath"):
        response = call(closed, text_body("anything"))
    assert response.status_code == 200
    assert response.json() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}
    assert "(fail-closed)" in caplog.text
    recorder.flush()
    assert RejectionCount.objects.get(reason="internal_failure").count == 1


# --- decision log, counters, hits ------------------------------------------------------


def test_it_logs_decisions_and_counts_allowed_messages(app, shared):
    spam = add(shared, "spam")
    darn = add(shared, "darn", action="mask")
    call(app, text_body("spam spam", sender="bob", room="room-9"))
    call(app, text_body("darn", sender="amy", room="room-9"))
    call(app, text_body("fine"))
    call(app, text_body("also fine"))
    assert Decision.objects.count() == 0  # nothing written on the answer path
    assert recorder.flush() == 2
    forbid, mask = Decision.objects.order_by("id")
    assert (forbid.app, forbid.room_id, forbid.sender, forbid.action) == (
        app,
        "room-9",
        "bob",
        "forbid",
    )
    assert forbid.error_code == 1
    assert forbid.entry_ids == [spam.pk]
    assert forbid.text == "spam spam"
    assert forbid.original["MsgBody"] == [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "spam spam"}}
    ]
    assert forbid.response == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}
    assert (
        mask.action,
        mask.entry_ids,
        mask.response["MsgBody"][0]["MsgContent"]["Text"],
    ) == ("mask", [darn.pk], "****")
    counts = dict(DecisionCount.objects.filter(app=app).values_list("action", "count"))
    assert counts == {"allow": 2, "forbid": 1, "mask": 1}
    spam.refresh_from_db()
    darn.refresh_from_db()
    assert (spam.hit_count, darn.hit_count) == (1, 1)
    assert spam.last_hit_at is not None


def test_it_adds_counts_across_flushes(app, shared):
    spam = add(shared, "spam")
    call(app, text_body("spam"))
    recorder.flush()
    call(app, text_body("spam"))
    call(app, text_body("ok"))
    recorder.flush()
    spam.refresh_from_db()
    assert spam.hit_count == 2
    assert (
        sum(
            DecisionCount.objects.filter(action="forbid").values_list(
                "count", flat=True
            )
        )
        == 2
    )


# --- rules follow changes ----------------------------------------------------------------


def test_it_follows_changes_without_a_restart(app, shared):
    assert call(app, text_body("newword")).json() == OK
    entry = add(shared, "newword")
    assert call(app, text_body("newword")).json()["ErrorCode"] == 1
    services.update_entry(entry, action="discard")
    assert call(app, text_body("newword")).json()["ErrorCode"] == 2
    services.delete_entry(entry)
    assert call(app, text_body("newword")).json() == OK


def test_it_follows_app_changes(app):
    assert call(app, text_body()).json() == OK
    app.webhook_token = "fresh-token"
    app.save()
    assert call(app, text_body()).status_code == 401
    assert call(app, text_body(), token="fresh-token").json() == OK


def test_it_makes_no_database_query_per_call(
    app, shared, django_assert_num_queries, settings
):
    settings.WEBHOOK_VERSION_CHECK_SECONDS = (
        60  # no version check falls inside the block
    )
    add(shared, "spam")
    call(app, text_body("warm up"))  # builds the rules once
    with django_assert_num_queries(0):
        for text in ("hello", "spam", "more"):
            call(app, text_body(text))


# --- what the matcher sees through, end to end through the view ------------------------


@pytest.mark.parametrize(
    ("entries", "text", "expected_code"),
    [
        ([("spam", "word", "forbid")], "ＳＰＡＭ", 1),  # full-width
        ([("spam", "word", "forbid")], "s\u200bp\u200ba\u200bm", 1),  # zero-width
        ([("spam", "word", "forbid")], "S.p-a m", 1),  # punctuation and spacing
        ([("红包", "word", "discard")], "快来抢红包啦", 2),  # Chinese
        ([("バカ", "word", "discard")], "お前はバカだ", 2),  # Japanese
        ([("바보", "word", "discard")], "너는 바보야", 2),  # Korean
        ([("ass", "word", "forbid"), ("class", "allow", "forbid")], "first class", 0),
        ([("buy*followers", "wildcard", "forbid")], "buy cheap followers", 1),
        ([(r"\d{3}-\d{4}", "regex", "discard")], "call 555-1234", 2),
        ([("darn", "word", "mask"), ("heck", "word", "discard")], "darn heck", 2),
        ([("darn", "word", "mask"), ("heck", "word", "forbid")], "darn heck", 1),
    ],
    ids=[
        "full-width",
        "zero-width",
        "spacing",
        "chinese",
        "japanese",
        "korean",
        "allow-list",
        "wildcard",
        "regex",
        "discard-beats-mask",
        "forbid-beats-discard-and-mask",
    ],
)
def test_it_decides_through_the_view(app, shared, entries, text, expected_code):
    for term, kind, action in entries:
        add(shared, term, kind=kind, action=action)
    assert call(app, text_body(text)).json()["ErrorCode"] == expected_code


def test_a_blocked_user_beats_a_mask(app, shared):
    add(shared, "darn", action="mask")
    user = add(shared, "troll-1", kind="user", action="forbid")
    call(app, text_body("darn", sender="troll-1"))
    recorder.flush()
    decision = Decision.objects.get()
    assert (decision.action, decision.error_code) == ("forbid", 1)
    assert user.pk in decision.entry_ids


def test_an_entry_stops_matching_when_it_expires(app, shared):
    from datetime import timedelta

    from django.utils import timezone

    add(shared, "soon", expires_at=timezone.now() + timedelta(seconds=30))
    assert call(app, text_body("soon")).json()["ErrorCode"] == 1
    # The compiled rules carry the expiry: no rebuild is needed for it to lapse.
    fields, _ = hotpath.parse_before_send(text_body("soon"))
    snapshot = rules_cache.rules.get()
    verdict, _ = hotpath.decide(snapshot.by_pk[app.pk], fields, now=time.time() + 31)
    assert verdict.action == "allow"


# --- the leaner WSGI entry point -------------------------------------------------------


def _wsgi_call(url: str, body: bytes, method: str = "POST") -> tuple[str, dict, bytes]:
    import io
    from urllib.parse import urlsplit
    from wsgiref.util import setup_testing_defaults

    from webhooks.wsgi import application

    parts = urlsplit(url)
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": parts.path,
        "QUERY_STRING": parts.query,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
        "HTTP_HOST": "testserver",
    }
    setup_testing_defaults(environ)
    seen: dict = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    out = b"".join(application(environ, start_response))
    return seen["status"], seen["headers"], out


def test_the_raw_wsgi_entry_answers_like_the_view(app, shared):
    add(shared, "casino", code=10150, info="No gambling")
    for body in (
        json.dumps(text_body("casino")).encode(),
        json.dumps(text_body("hello")).encode(),
        b"{nope",
    ):
        view = post_webhook(Client(), webhook_url(app), body)
        status, headers, raw = _wsgi_call(webhook_url(app), body)
        assert int(status.split()[0]) == view.status_code
        assert headers["Content-Type"] == "application/json"
        assert json.loads(raw) == view.json()
    status, headers, raw = _wsgi_call(webhook_url(app), b"", method="GET")
    assert (status, headers["Allow"], json.loads(raw)) == (
        "405 Method Not Allowed",
        "POST",
        {"error": "use POST"},
    )


def test_the_raw_wsgi_entry_hands_other_paths_to_django(db):
    status, _, _ = _wsgi_call("/accounts/login/", b"", method="GET")
    assert status == "200 OK"


@pytest.mark.django_db(transaction=True)
def test_the_background_writer_records_without_being_asked(settings):
    settings.WEBHOOK_RECORD_IN_BACKGROUND = True
    settings.WEBHOOK_RECORD_SECONDS = 0.05
    app = make_app(name="background")
    spam = add(services.create_list("Background", app=None), "spam")
    try:
        response = call(app, text_body("spam", sender="bob"))
        assert response.json()["ErrorCode"] == 1
        deadline = time.monotonic() + 5
        while not Decision.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the writer thread's commit
        decision = Decision.objects.get()
        assert (decision.sender, decision.entry_ids) == ("bob", [spam.pk])
    finally:
        recorder.stop()
    spam.refresh_from_db()
    assert spam.hit_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_background_writer_keeps_its_connection_and_replaces_a_broken_one(settings):
    """CONN_MAX_AGE=0 is for requests: the writer flushes several times a second and
    keeps its connection; when the database drops it, one flush fails (its batch is
    put back: the next test) and the next one connects anew."""
    from django.db import connection

    from webhooks.background import BackgroundWriter

    if connection.vendor != "postgresql":
        pytest.skip("ends a PostgreSQL backend")
    settings.WEBHOOK_RECORD_IN_BACKGROUND = True
    settings.WEBHOOK_RECORD_SECONDS = 0.01
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    flushed = threading.Condition()
    backends: list[int | None] = []  # None: the flush failed

    class Writer(BackgroundWriter):
        def flush(self) -> int:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    backends.append(cursor.fetchone()[0])
            except Exception:
                backends.append(None)
                raise
            finally:
                with flushed:
                    flushed.notify_all()
            return 0

    def flushes(n: int) -> list[int | None]:
        with flushed:
            assert flushed.wait_for(lambda: len(backends) >= n, timeout=10)
            return list(backends)

    writer = Writer()
    writer._maybe_wake(0)
    try:
        first = flushes(3)
        assert len(set(first)) == 1 and first[0] is not None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [first[0]])
        later = flushes(len(first) + 3)[len(first) :]
        assert later[0] is None  # the flush on the dropped connection
        replaced = [pid for pid in later if pid is not None]
        assert replaced and first[0] not in replaced and len(set(replaced)) == 1
    finally:
        writer.stop()


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_database_dropped_is_written_by_the_next_flush():
    from django.db import connection

    from webhooks.background import reuse_connections

    if connection.vendor != "postgresql":
        pytest.skip("ends a PostgreSQL backend")
    app = make_app(name="dropped")
    add(services.create_list("Dropped", app=None), "spam")
    assert call(app, text_body("spam", sender="bob")).json()["ErrorCode"] == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with connection.cursor() as cursor, contextlib.suppress(OperationalError):
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])  # ends this very one
    with pytest.raises(OperationalError):
        recorder.flush()
    reuse_connections()  # what the writer thread does before each flush
    assert not Decision.objects.exists()  # a new connection; nothing was written
    assert recorder.flush() == 1
    assert Decision.objects.get().sender == "bob"
    assert recorder.totals["dropped"] == 0


def test_a_version_check_without_a_change_rebuilds_nothing(
    app, shared, django_assert_num_queries, settings
):
    settings.WEBHOOK_VERSION_CHECK_SECONDS = 0  # check on every call
    add(shared, "spam")
    call(app, text_body("warm up"))
    built = rules_cache.rules.get().built_at
    # One cheap version read per call (a Redis GET, or one small SELECT), no rebuild.
    with django_assert_num_queries(0 if settings.REDIS_URL else 3):
        for text in ("hello", "spam", "more"):
            call(app, text_body(text))
    assert rules_cache.rules.get().built_at == built


def test_the_rules_check_thread_outlives_a_failing_check(monkeypatch, settings):
    """One thread per process checks the version; a check that raises must not end it,
    or the process would answer from its current rules for ever."""
    settings.WEBHOOK_VERSION_CHECK_SECONDS = 0
    cache = rules_cache.RulesCache()
    cache._snapshot = rules_cache.Snapshot("t", {}, {}, 0.0)
    tokens: list[str] = []

    def build_aside(token: str) -> None:
        tokens.append(token)
        if len(tokens) == 1:
            raise RuntimeError("the database went away")

    monkeypatch.setattr(cache, "_build_aside", build_aside)
    cache._check_in_background()
    cache.wait_for_build(5)
    cache._check_in_background()
    cache.wait_for_build(5)
    assert tokens == ["t", "t"]
    assert cache._checker is not None and cache._checker.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_change_from_another_process_is_built_aside_while_calls_are_answered(
    settings,
):
    """The version moved (as another process's change moves it): the next calls are
    answered from the rules in memory at once, and the new rules replace them when the
    build in the background thread is done."""
    settings.WEBHOOK_REBUILD_IN_BACKGROUND = True
    settings.WEBHOOK_VERSION_CHECK_SECONDS = 0
    app = make_app(name="aside")
    shared = services.create_list("Shared", app=None)
    add(shared, "spam")
    assert call(app, text_body("spam and eggs")).json()["ErrorCode"] == 1
    before = rules_cache.rules.get()
    # Another process adds an entry: only the database and the version move here.
    from webhooks.models import RulesVersion

    BlocklistEntry.objects.create(
        blocklist=shared, kind="word", term="eggs", term_key="eggs", action="discard"
    )
    RulesVersion.objects.filter(pk=1).update(version=F("version") + 1)
    version.publish()
    # The call that notices the change is answered from the current rules...
    assert call(app, text_body("eggs")).json()["ErrorCode"] == 0
    # ... and once the build aside is done, the new entry applies.
    rules_cache.rules.wait_for_build()
    assert rules_cache.rules.get() is not before
    assert call(app, text_body("eggs")).json()["ErrorCode"] == 2
