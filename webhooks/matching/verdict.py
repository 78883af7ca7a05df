"""What the matcher reads and returns: a stored entry as a Rule, a Hit, the Verdict."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str  # "word" | "wildcard" | "regex" | "user" | "allow"
    term: str
    action: str  # "forbid" | "forbid_code" | "discard" | "mask"
    code: int | None = None  # 10100..10200 for forbid_code
    info: str = ""
    expires_at: float | None = None  # Unix seconds
    # exact: no accent or look-alike folding; leet: also digits and symbols read as letters.
    exact: bool = False
    leet: bool = False


@dataclass(frozen=True)
class Hit:
    rule_id: int
    kind: str
    # The rule's action, or "allow" for an allow entry that suppressed a hit.
    action: str
    # "MsgBody[0].Text", "MsgBody[1].Data.Data", "CloudCustomData", "From_Account", ...
    field: str
    # Character offsets in the original string of that field; for a value inside JSON, in the decoded
    # value (what a client shows), not in the escaped JSON text.
    start: int
    end: int


@dataclass(frozen=True)
class Verdict:
    action: str  # "allow" | "forbid" | "forbid_code" | "discard" | "mask"
    error_code: int
    error_info: str
    hits: tuple[Hit, ...]
    msg_body: list | None = None
    cloud_custom_data: str | None = None

    def response(self) -> dict:
        """The webhook answer in the documented format (docs/providers.md,
        "Before-send webhook")."""
        body: dict = {
            "ActionStatus": "OK",
            "ErrorInfo": self.error_info,
            "ErrorCode": self.error_code,
        }
        if self.msg_body is not None:
            body["MsgBody"] = self.msg_body
        if self.cloud_custom_data is not None:
            body["CloudCustomData"] = self.cloud_custom_data
        return body


ALLOW = Verdict(action="allow", error_code=0, error_info="", hits=())
