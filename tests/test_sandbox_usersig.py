"""The sandbox's UserSig verifier against the official generator and the documented
algorithm (docs/providers.md, "UserSig")."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from messaging.sandbox.usersig import UserSigError, compute_sig, verify_usersig
from tests.sandbox_support import build_usersig, gen_usersig

KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
APP = 1400000000


def pack(doc: object) -> str:
    raw = base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()
    return raw.replace("+", "*").replace("/", "-").replace("=", "_")


def code_of(sig: str, *, now: float | None = None, **expected) -> int:
    args = {"sdkappid": APP, "identifier": "xiaojun", "key": KEY, **expected}
    with pytest.raises(UserSigError) as excinfo:
        verify_usersig(sig, now=now, **args)
    return excinfo.value.code


def test_it_matches_the_documented_test_vector():
    assert (
        compute_sig(KEY, "xiaojun", APP, 1700000000, 86400)
        == "SNF4FmVCPucoXsBOpbVF3fFCf57JPm0ezZ1jeVILlVc="
    )


def test_it_accepts_a_sig_from_the_official_library():
    fields = verify_usersig(
        gen_usersig(APP, KEY, "xiaojun"), sdkappid=APP, identifier="xiaojun", key=KEY
    )
    assert fields["TLS.identifier"] == "xiaojun"
    assert fields["TLS.sdkappid"] == APP


def test_it_expires_strictly_after_time_plus_expire():
    sig = build_usersig(APP, KEY, "xiaojun", issued=1700000000, expire=86400)
    verify_usersig(
        sig, sdkappid=APP, identifier="xiaojun", key=KEY, now=1700000000 + 86400
    )
    assert code_of(sig, now=1700000000 + 86401) == 70001


def test_it_checks_in_the_go_librarys_order():
    # Wrong app id, wrong identifier, expired and wrong key at once: the app id wins.
    sig = build_usersig(APP + 1, "other-key", "someone", issued=1, expire=1)
    assert code_of(sig) == 70014
    sig = build_usersig(APP, "other-key", "someone", issued=1, expire=1)
    assert code_of(sig) == 70013
    sig = build_usersig(APP, "other-key", "xiaojun", issued=1, expire=1)
    assert code_of(sig) == 70001
    sig = build_usersig(APP, "other-key", "xiaojun", issued=1, expire=10**10)
    assert code_of(sig) == 70009


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        ("", 70002),
        ("not base64 at all!", 70003),
        (base64.b64encode(b"not zlib").decode(), 70003),
        (pack(["a", "list"]), 70003),
        (pack({"TLS.sdkappid": APP, "TLS.identifier": "xiaojun"}), 70003),
        (
            pack(
                {
                    "TLS.sdkappid": "abc",
                    "TLS.identifier": "xiaojun",
                    "TLS.time": 1,
                    "TLS.expire": 1,
                    "TLS.sig": "x",
                }
            ),
            70003,
        ),
    ],
)
def test_it_rejects_malformed_sigs(sig, code):
    assert code_of(sig) == code


def test_it_refuses_a_sig_with_a_userbuf():
    doc = {
        "TLS.ver": "2.0",
        "TLS.identifier": "xiaojun",
        "TLS.sdkappid": APP,
        "TLS.time": 1700000000,
        "TLS.expire": 10**9,
        "TLS.userbuf": "AAAA",
        "TLS.sig": compute_sig(KEY, "xiaojun", APP, 1700000000, 10**9),
    }
    assert code_of(pack(doc)) == 70009
