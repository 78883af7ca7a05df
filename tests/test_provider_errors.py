"""Every documented error code is classified (retryable or permanent) and explained.

The expected classes are written out here from the documentation (seed pages and
PROVIDERS.md tables 1.3, 5.1, 5.2, 6.3), independently of the tables in the clients.
"""

from __future__ import annotations

import pytest

from messaging.providers import explain, tencent, zego

TENCENT_RETRYABLE = [
    60007,  # REST API call frequency over limit
    60008,  # service timeout; retry
    60011,  # SDKAppID-level frequency limit
    60013,
    60014,
    60018,
    60019,
    70001,  # expired UserSig (after one regeneration)
    70050,
    70114,
    70169,
    70202,
    70500,
    80003,
    10002,  # broadcast: internal error, try again
    10006,
    10023,  # broadcast: message frequency limit
    100001,  # live_engine: internal error, try again
    100602,  # live_engine: message frequency limit
]
TENCENT_PERMANENT = [
    60002,
    60003,
    60004,
    60005,
    60006,
    60009,
    60010,
    60012,
    60015,
    60016,
    60017,
    60020,
    60021,
    70002,
    70003,
    70005,
    70009,
    70013,
    70014,
    70016,
    70020,
    70051,
    70107,
    70206,
    70398,
    70402,
    70403,
    80001,
    80002,
    80004,
    90002,
    90007,
    90010,
    90055,
    93000,
    10003,
    10004,
    10005,
    10007,
    10010,
    10015,
    10016,
    10017,
    10018,
    10030,
    10031,
    10032,
    10033,
    10035,
    10041,
    100002,
    100004,
    100006,
    100601,
    100603,
]
ZEGO_RETRYABLE = [
    1,
    7,
    121,
    122,
    151,
    206,
    207,
    5201,
    5202,
    50004,
    50013,
    100000011,
    100000015,
]
ZEGO_PERMANENT = [
    2,
    3,
    8,
    9,
    104,
    105,
    1008,
    5018,
    5024,
    50001,
    50002,
    50003,
    50011,
    50012,
    50123,
    50124,
    *[100000000 + n for n in range(18) if n not in (11, 15)],
]


@pytest.mark.parametrize("code", TENCENT_RETRYABLE)
def test_it_classifies_retryable_tencent_codes(code):
    info = tencent.classify(code)
    assert info.retryable is True
    assert info.retry_after and info.retry_after > 0
    assert code in tencent.CODES


@pytest.mark.parametrize("code", TENCENT_PERMANENT)
def test_it_classifies_permanent_tencent_codes(code):
    assert tencent.classify(code).retryable is False
    assert code in tencent.CODES


@pytest.mark.parametrize("code", ZEGO_RETRYABLE)
def test_it_classifies_retryable_zego_codes(code):
    assert zego.classify(code).retryable is True
    assert code in zego.CODES


@pytest.mark.parametrize("code", ZEGO_PERMANENT)
def test_it_classifies_permanent_zego_codes(code):
    assert zego.classify(code).retryable is False
    assert code in zego.CODES


def test_it_lists_no_code_it_was_not_asked_about():
    assert set(tencent.CODES) == set(TENCENT_RETRYABLE) | set(TENCENT_PERMANENT)
    assert set(zego.CODES) == set(ZEGO_RETRYABLE) | set(ZEGO_PERMANENT)


@pytest.mark.parametrize(
    ("provider", "code"),
    [("tencent", c) for c in TENCENT_RETRYABLE + TENCENT_PERMANENT]
    + [("zego", c) for c in ZEGO_RETRYABLE + ZEGO_PERMANENT],
)
def test_it_explains_every_documented_code(provider, code):
    text = explain(provider, code)
    assert text.endswith(".") or text.endswith(")")
    assert len(text) > 15
    assert f"with code {code}" not in text  # not the fallback for unknown codes


def test_it_explains_specific_codes_for_people():
    assert explain("tencent", 100004) == (
        "The room does not exist: it was never created or has been dissolved."
    )
    assert explain("tencent", 100601) == "The sender is muted in this room."
    assert (
        explain("tencent", 10016)
        == "The app's before-send webhook refused the message."
    )
    assert (
        explain("zego", 100000005) == "The signature is wrong: check the ServerSecret."
    )
    assert explain("zego", 50001).startswith("The room does not exist")
    assert explain("tencent", 0) == explain("zego", 0) == "Sent."
    assert explain("tencent", None) == ""
    assert explain("nowhere", 1) == ""


@pytest.mark.parametrize("code", [10100, 10150, 10200])
def test_it_treats_webhook_codes_as_permanent(code):
    info = tencent.classify(code)
    assert info.retryable is False
    assert info.explanation == (
        f"The app's before-send webhook refused the message (code {code})."
    )


def test_it_treats_unknown_codes_as_permanent():
    assert tencent.classify(99999).retryable is False
    assert (
        explain("tencent", 99999) == "The provider refused the request with code 99999."
    )
    assert zego.classify(424242).retryable is False
    assert explain("zego", 424242) == "ZEGO refused the request with code 424242."
