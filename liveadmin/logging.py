"""Log redaction: no usersig, key, token or signature ever reaches a log line."""

from __future__ import annotations

import logging
import re

# query-string or JSON-ish "name=value" / "name": "value" pairs whose value is secret
_SECRET_NAMES = r"usersig|signature|sign|secret(?:_key)?|server_?secret|token|webhook_token|key|password"
_PAIR = re.compile(
    rf"""(?P<name>\b(?:{_SECRET_NAMES})\b)(?P<sep>["']?\s*[=:]\s*["']?)(?P<value>[^&"'\s,}}]+)""",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Replace the value of every secret-looking parameter with ``[redacted]``."""
    return _PAIR.sub(lambda m: f"{m['name']}{m['sep']}[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
