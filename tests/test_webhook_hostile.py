"""Hostile input to the before-send webhook: every refusal is a JSON 4xx (never a 500,
never HTML), and no decision is lost because of another message in the same batch."""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_app
from tests.webhook_support import BEFORE, post_webhook, text_body, webhook_url
from webhooks import services
from webhooks.models import Decision, RejectionCount
from webhooks.recorder import UNRECORDED, recorder, storable

pytestmark = pytest.mark.django_db

APP_ID = 1400999001


@pytest.fixture
def app(db):
    app = make_app(name="hostile", app_id=APP_ID)
    shared = services.create_list("Shared", app=None)
    for term in ("spam", "casino"):
        services.add_entry(shared, term=term)
    services.add_entry(shared, term="mask*", kind="wildcard", action="mask")
    services.add_entry(shared, term=r"wx\d{5,}", kind="regex", action="discard")
    services.add_entry(shared, term="troll-1", kind="user")
    return app


# --- the query string ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, message",
    [
        ("%C2%B2", "SdkAppid must be a number"),  # superscript two: isdigit() is True
        ("%D9%A3", "SdkAppid must be a number"),  # Arabic-Indic three
        ("%EF%BC%91", "SdkAppid must be a number"),  # full-width one
        ("9" * 5000, "SdkAppid must be a number"),  # int() refuses > 4,300 digits
        ("-1", "SdkAppid must be a number"),
    ],
)
def test_it_refuses_an_sdkappid_that_is_not_ascii_digits(app, raw, message):
    url = webhook_url(app).replace(f"SdkAppid={APP_ID}", f"SdkAppid={raw}")
    response = post_webhook(Client(), url, text_body())
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": message}


def test_it_refuses_a_request_time_in_other_digits(db):
    app = make_app(app_id=APP_ID, webhook_token="tok")
    url = webhook_url(app) + "&Sign=abc&RequestTime=" + quote("١٧٠٠٠٠٠٠٠٠")
    response = post_webhook(Client(), url, text_body())
    assert response.status_code == 400
    assert response.json() == {"error": "RequestTime must be Unix seconds"}


@pytest.mark.parametrize("text_value", [42, 1.5, ["spam"], {"x": "spam"}, True, None])
def test_it_refuses_a_text_that_is_not_a_string(app, text_value):
    body = text_body(
        elements=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text_value}}]
    )
    response = post_webhook(Client(), webhook_url(app), body)
    assert response.status_code == 400
    assert response.json() == {"error": "MsgBody[0].MsgContent.Text must be a string"}


# --- property-based: nothing a sender sends gets a 500 or a non-JSON answer ----------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["spam", "SPAM", "ｓｐａｍ", "c a s i n o", "mask me", "wx123456"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    ),
    max_leaves=6,
)
MSG_TYPES = st.sampled_from(
    [
        "TIMTextElem",
        "TIMCustomElem",
        "TIMFaceElem",
        "TIMLocationElem",
        "TIMRelayElem",
        "TIMImageElem",
        "timtextelem",
        "",
    ]
)
ELEMENT = st.one_of(
    st.fixed_dictionaries(
        {
            "MsgType": MSG_TYPES,
            "MsgContent": st.dictionaries(
                st.sampled_from(["Text", "Data", "Desc", "Ext", "Index", "Title"]),
                JSON_VALUES,
                max_size=3,
            ),
        }
    ),
    JSON_VALUES,
)


@st.composite
def bodies(draw: Any) -> bytes:
    kind = draw(st.sampled_from([0, 1, 2, 2, 2, 2, 3, 3]))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return json.dumps(draw(JSON_VALUES)).encode()
    body: dict[str, Any] = text_body(draw(st.text(max_size=60)))
    body["MsgBody"] = draw(st.lists(ELEMENT, min_size=1, max_size=4))
    for name in draw(
        st.lists(
            st.sampled_from(
                ["GroupId", "From_Account", "CloudCustomData", "Random", "MsgBody"]
            ),
            max_size=1,
        )
    ):
        body[name] = draw(JSON_VALUES)
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if kind == 3:  # lone surrogates and NUL through JSON escapes
        text = text.replace("a", "\\ud800", 1).replace("e", "\\u0000", 1)
    return text.encode("utf-8", "surrogatepass")


QUERY_VALUE = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [str(APP_ID), BEFORE, "Group.CallbackAfterSendMsg", "%C2%B2", "%ZZ", "1e3"]
    ),
)
QUERIES = st.dictionaries(
    st.sampled_from(
        ["SdkAppid", "CallbackCommand", "Sign", "RequestTime", "contenttype", "x"]
    ),
    QUERY_VALUE,
    max_size=2,
).map(lambda q: {"SdkAppid": str(APP_ID), "CallbackCommand": BEFORE} | q)


def _call(
    application: Any, method: str, query: str, body: bytes
) -> tuple[str, dict, bytes]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/webhooks/tencent",
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "127.0.0.1",
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    payload = b"".join(application(environ, start_response))
    return seen["status"], seen["headers"], payload


# Calls per generated example: Hypothesis spends about a millisecond on each example
# whatever it draws, so each example is a run of calls (10,000 calls in 1,000 examples).
CALLS_PER_EXAMPLE = 10


def test_fuzzed_calls_get_json_and_never_a_500(app):
    from webhooks.wsgi import application

    wanted = int(os.environ.get("FUZZ_EXAMPLES", "10000"))
    answered: dict[int, int] = {}
    call = st.tuples(
        st.sampled_from(["POST"] * 8 + ["GET", "PUT"]),
        QUERIES,
        st.booleans(),
        bodies(),
    )

    @settings(
        max_examples=-(-wanted // CALLS_PER_EXAMPLE),
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(calls=st.lists(call, min_size=CALLS_PER_EXAMPLE, max_size=CALLS_PER_EXAMPLE))
    def check(calls: list[tuple[str, dict[str, str], bool, bytes]]) -> None:
        for method, query, raw_query, body in calls:
            if raw_query:  # the values exactly as drawn, percent signs and all
                query_string = "&".join(f"{k}={v}" for k, v in query.items())
            else:
                query_string = "&".join(f"{k}={quote(v)}" for k, v in query.items())
            status, headers, payload = _call(application, method, query_string, body)
            code = int(status.split()[0])
            assert code < 500, (status, payload)
            assert headers["Content-Type"] == "application/json"
            assert isinstance(json.loads(payload), dict)
            # A bug of ours would still answer 200 (the fail policy): none may happen.
            assert "rejected:internal_failure" not in recorder.totals, (query, body)
            answered[code] = answered.get(code, 0) + 1
            recorder.discard()

    check()
    examples = sum(answered.values())
    assert examples >= wanted
    # The generator reached the decision, not only the refusals.
    assert (
        answered.get(200, 0) > examples // 20 and answered.get(400, 0) > examples // 10
    )


# --- storable values and the row-by-row fallback -----------------------------------------


def test_storable_replaces_nul_and_lone_surrogates_everywhere():
    value = {"a\x00": ["x\ud800y", {"k": "\udfff"}], "n": 3, "ok": "日本"}
    assert storable(value) == {
        "a\ufffd": ["x\ufffdy", {"k": "\ufffd"}],
        "n": 3,
        "ok": "日本",
    }


def test_no_decision_is_lost_because_of_another_message(app):
    """NUL, lone surrogates, a 1 MB text and 10,000 elements among ordinary blocked
    messages: every one of them is recorded."""
    client = Client()
    url = webhook_url(app)
    big = "spam " + "x" * (1024 * 1024 - 600)
    raw_bodies: list[bytes] = []
    for i in range(40):
        raw_bodies.append(
            json.dumps(text_body(f"spam number {i}", room=f"r{i}")).encode()
        )
    raw_bodies.append(json.dumps(text_body("spam\x00 with a NUL")).encode())
    raw_bodies.append(json.dumps(text_body("spam", sender="nul\x00sender")).encode())
    raw_bodies.append(
        b'{"CallbackCommand":"Group.CallbackBeforeSendMsg","GroupId":"r","From_Account":"u",'
        b'"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"spam \\ud800 lone"}}]}'
    )
    raw_bodies.append(
        b'{"CallbackCommand":"Group.CallbackBeforeSendMsg","GroupId":"r","From_Account":"u",'
        b'"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"mask \\udfff me"}}],'
        b'"CloudCustomData":"{\\"k\\\\u0000\\":\\"\\\\udc00\\"}"}'
    )
    raw_bodies.append(json.dumps(text_body(big)).encode())
    many = [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": f"w{i}"}}
        for i in range(10_000)
    ]
    many[9_999]["MsgContent"]["Text"] = "casino"
    raw_bodies.append(json.dumps(text_body(elements=many)).encode())
    for body in raw_bodies:
        assert len(body) <= 1024 * 1024
        response = post_webhook(client, url, body)
        assert response.status_code == 200, response.content
        answer = response.json()
        if b"mask" in body:
            assert answer["ErrorCode"] == 0 and "MsgBody" in answer, answer
        else:
            assert answer["ErrorCode"] == 1, answer
    assert recorder.flush() == len(raw_bodies)
    assert Decision.objects.count() == len(raw_bodies)
    assert Decision.objects.filter(text__contains="\ufffd").count() == 3
    assert not RejectionCount.objects.filter(reason=UNRECORDED).exists()


def test_a_row_the_database_refuses_is_dropped_alone_and_counted(app):
    """A row no cleaning makes storable (here: a room longer than its column, which
    only PostgreSQL enforces) costs only itself."""
    from webhooks.recorder import Batch, PendingDecision, write_batch

    def pending(room: str) -> PendingDecision:
        return PendingDecision(0.0, app.pk, room, "u", "forbid", 1, [], "t", {}, {})

    batch = Batch(decisions=[pending("a"), pending("b" * 300), pending("c")])
    written, dropped = write_batch(batch)
    from django.db import connection

    if connection.vendor == "postgresql":
        assert (written, dropped) == (2, 1)
        assert sorted(Decision.objects.values_list("room_id", flat=True)) == ["a", "c"]
        assert RejectionCount.objects.get(reason=UNRECORDED).count == 1
    else:  # SQLite stores the long value as it is
        assert (written, dropped) == (3, 0)


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.sampled_from(list("&=+%;aZ09._-~ é\u00b2") + ["%2", "%C2%B2", "%zz"]),
        max_size=30,
    ).map("".join)
)
def test_the_query_is_read_as_the_standard_library_reads_it(query):
    from urllib.parse import parse_qsl

    from webhooks.request_body import parse_query

    expected = dict(parse_qsl(query, keep_blank_values=True, errors="replace"))
    assert parse_query(query) == expected
