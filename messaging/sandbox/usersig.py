"""UserSig v2 verification, as Tencent's Go and PHP libraries do it
(docs/providers.md, "UserSig").

The PyPI package ``tls-sig-api-v2`` only generates signatures, so the sandbox has
its own verifier. The mapping of each failure to a REST error code is INFERRED
(docs/providers.md, UNCONFIRMED): consistent with Tencent's 70xxx table, not
documented as such.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import zlib

EMPTY = 70002
MALFORMED = 70003
EXPIRED = 70001
SIG_MISMATCH = 70009
IDENTIFIER_MISMATCH = 70013
SDKAPPID_MISMATCH = 70014


class UserSigError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _signed_content(identifier: str, sdkappid: int, issued: int, expire: int) -> bytes:
    return (
        f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{issued}\nTLS.expire:{expire}\n"
    ).encode()


def compute_sig(
    key: str, identifier: str, sdkappid: int, issued: int, expire: int
) -> str:
    """TLS.sig: standard base64 of HMAC-SHA256(key bytes, content)."""
    digest = hmac.new(
        key.encode(),
        _signed_content(identifier, sdkappid, issued, expire),
        hashlib.sha256,
    ).digest()
    return base64.b64encode(digest).decode()


def decode_usersig(usersig: str) -> dict:
    """Undo the URL-safe substitution, base64, zlib and JSON layers."""
    try:
        raw = usersig.replace("_", "=").replace("-", "/").replace("*", "+")
        data = json.loads(zlib.decompress(base64.b64decode(raw, validate=True)))
    except (binascii.Error, ValueError, zlib.error):
        raise UserSigError(MALFORMED, "UserSig cannot be decoded") from None
    if not isinstance(data, dict):
        raise UserSigError(MALFORMED, "UserSig cannot be decoded")
    return data


def verify_usersig(
    usersig: str,
    *,
    sdkappid: int,
    identifier: str,
    key: str,
    now: float | None = None,
) -> dict:
    """Return the decoded fields, or raise UserSigError with the REST error code.

    Checks in the Go library's order: sdkappid, identifier, expiry
    (``now > time + expire``; exactly at time+expire is still valid), then the HMAC.
    """
    if not usersig:
        raise UserSigError(EMPTY, "UserSig is empty")
    fields = decode_usersig(usersig)
    try:
        sig_appid = int(fields["TLS.sdkappid"])
        sig_identifier = str(fields["TLS.identifier"])
        issued = int(fields["TLS.time"])
        expire = int(fields["TLS.expire"])
        sig = str(fields["TLS.sig"])
    except (KeyError, TypeError, ValueError):
        raise UserSigError(MALFORMED, "UserSig misses a field") from None
    if sig_appid != sdkappid:
        raise UserSigError(
            SDKAPPID_MISMATCH, "sdkappid in UserSig does not match the request"
        )
    if sig_identifier != identifier:
        raise UserSigError(
            IDENTIFIER_MISMATCH, "identifier in UserSig does not match the request"
        )
    if (time.time() if now is None else now) > issued + expire:
        raise UserSigError(EXPIRED, "UserSig expired")
    if "TLS.userbuf" in fields:
        # A PrivateMapKey-style sig is not valid for the REST API.
        raise UserSigError(SIG_MISMATCH, "UserSig verification failed")
    expected = compute_sig(key, sig_identifier, sig_appid, issued, expire)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise UserSigError(
            SIG_MISMATCH, "UserSig verification failed: key does not match"
        )
    return fields
