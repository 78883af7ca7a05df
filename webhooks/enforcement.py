"""Sanctions and escalation as the webhook's hot path applies them.

- ``load()`` reads the active sanctions and enabled escalation rules once per rules
  rebuild (sanctions bump the rules version), into per-app tables the hot path
  reads with one dictionary lookup by sender. Each sanction carries its expiry, so
  it ends by itself at answer time, without a rebuild.
- ``escalator.hit(...)`` counts a sender's hits in a sliding window shared by every
  web process: one pipelined Redis round trip (ZADD, ZREMRANGEBYSCORE, ZCOUNT,
  EXPIRE) when REDIS_URL is set, process memory otherwise, and only for messages
  that hit a rule. The Nth hit imposes the rule's sanction: this process applies it
  at once (``overlay``), and the background writer stores it as a Sanction row,
  which reaches the other processes with the rules version. Until then, any
  process that counts more than N hits answers the message as sanctioned itself.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

HITS_KEY = "liveadmin:escalation:{app_pk}:{room}:{sender}"
# A muted sender is answered like a blocked user: forbidden, the sender gets 10016.
MUTED_RESPONSE = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}


@dataclass(frozen=True)
class Active:
    """One sanction in force: ``room`` "" = every room; ``expires`` None = permanent."""

    id: int | None  # None: imposed by escalation in this process, not stored yet
    kind: str  # "mute" | "flag"
    room: str
    expires: float | None

    def applies(self, room: str, now: float) -> bool:
        return (not self.room or self.room == room) and (
            self.expires is None or self.expires > now
        )


@dataclass(frozen=True)
class Escalation:
    hits: int
    within: int  # seconds
    kind: str  # "mute" | "flag"
    minutes: int  # 0 = permanently
    room_only: bool


Sanctions = dict[str, tuple[Active, ...]]  # sender -> sanctions


@dataclass(frozen=True)
class AppModeration:
    """One app's moderation state in a web process's memory."""

    pk: int
    identifier: str = ""  # the admin account: Operator_Account of LiveAdmin's own sends
    sanctions: Sanctions = field(default_factory=dict)
    escalations: tuple[Escalation, ...] = ()
    review_ids: frozenset[int] = frozenset()  # entries that also queue for review


def load() -> dict[int, AppModeration]:
    """Every app's moderation state, read with the rules (webhooks/rules_cache.py keeps
    it in the snapshot, so the hot path never reads the database for it)."""
    from messaging.models import ProviderApp
    from webhooks.models import BlocklistEntry, EscalationRule, Sanction

    sanctions: dict[int, dict[str, list[Active]]] = {}
    for row in Sanction.objects.active().values(
        "id", "app_id", "sender", "room_id", "kind", "expires_at"
    ):
        expires = row["expires_at"]
        sanctions.setdefault(row["app_id"], {}).setdefault(row["sender"], []).append(
            Active(
                row["id"],
                row["kind"],
                row["room_id"],
                expires.timestamp() if expires else None,
            )
        )
    rules: dict[int, list[Escalation]] = {}
    for rule in EscalationRule.objects.filter(enabled=True):
        rules.setdefault(rule.app_id, []).append(
            Escalation(
                rule.hits,
                rule.within_seconds,
                rule.sanction,
                rule.minutes,
                rule.room_only,
            )
        )
    review_ids = frozenset(
        BlocklistEntry.objects.filter(review=True, enabled=True).values_list(
            "id", flat=True
        )
    )
    return {
        pk: AppModeration(
            pk,
            identifier,
            {s: tuple(v) for s, v in sanctions.get(pk, {}).items()},
            tuple(rules.get(pk, ())),
            review_ids,
        )
        for pk, identifier in ProviderApp.objects.values_list("pk", "identifier")
    }


def find(
    sanctions: Sanctions, sender: str, room: str, now: float, kind: str
) -> Active | None:
    for active in sanctions.get(sender, ()):
        if active.kind == kind and active.applies(room, now):
            return active
    return None


class Escalator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memory: dict[str, deque[float]] = {}
        # Sanctions this process imposed: (app_pk, sender) -> Active, until stored and
        # loaded by a rebuild.
        self.overlay: dict[tuple[int, str], list[Active]] = {}
        self._pending: list[tuple[int, str, str, Escalation, int]] = []

    # --- counting -------------------------------------------------------------------
    def _counts(
        self,
        app_pk: int,
        sender: str,
        room: str,
        rules: tuple[Escalation, ...],
        now: float,
    ) -> list[int]:
        from webhooks.version import redis_client

        keys = [
            HITS_KEY.format(
                app_pk=app_pk, room=room if r.room_only else "", sender=sender
            )
            for r in rules
        ]
        longest: dict[str, int] = {}
        for key, rule in zip(keys, rules, strict=True):
            longest[key] = max(longest.get(key, 0), rule.within)
        client = redis_client()
        if client is not None:
            try:
                member = f"{now:.6f}-{secrets.token_hex(4)}"
                pipe = client.pipeline(transaction=False)
                for key, within in longest.items():
                    pipe.zadd(key, {member: now})
                    pipe.zremrangebyscore(key, "-inf", now - within)
                    pipe.expire(key, within + 1)
                for key, rule in zip(keys, rules, strict=True):
                    pipe.zcount(key, now - rule.within, "+inf")
                results = pipe.execute()
                return [int(n) for n in results[len(longest) * 3 :]]
            except Exception:
                logger.warning("Redis unreachable; counting escalation hits in memory")
        with self._lock:
            for key, within in longest.items():
                hits = self._memory.setdefault(key, deque())
                hits.append(now)
                while hits and hits[0] <= now - within:
                    hits.popleft()
            return [
                sum(1 for t in self._memory[key] if t > now - rule.within)
                for key, rule in zip(keys, rules, strict=True)
            ]

    def hit(
        self,
        app_pk: int,
        sender: str,
        room: str,
        rules: tuple[Escalation, ...],
        now: float,
    ) -> Active | None:
        """Count a hit; returns the sanction that answers this message, if any (more
        than N hits in the window), after imposing it at the Nth."""
        counts = self._counts(app_pk, sender, room, rules, now)
        answer: Active | None = None
        for rule, count in zip(rules, counts, strict=True):
            if count < rule.hits:
                continue
            active = Active(
                None,
                rule.kind,
                room if rule.room_only else "",
                now + rule.minutes * 60 if rule.minutes else None,
            )
            if count == rule.hits:
                self._impose(app_pk, sender, room, rule, active)
                from webhooks.recent import recent

                recent.wake()
            elif answer is None or rule.kind == "mute":
                answer = active
        return answer

    def _impose(
        self, app_pk: int, sender: str, room: str, rule: Escalation, active: Active
    ) -> None:
        with self._lock:
            self.overlay.setdefault((app_pk, sender), []).append(active)
            self._pending.append((app_pk, sender, room, rule, int(time.time())))

    def overlaid(
        self, app_pk: int, sender: str, room: str, now: float, kind: str
    ) -> Active | None:
        for active in self.overlay.get((app_pk, sender), ()):
            if active.kind == kind and active.applies(room, now):
                return active
        return None

    # --- the background write -------------------------------------------------------------
    def flush(self) -> int:
        """Store the sanctions imposed since the last flush (each bumps the version)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        from messaging.models import ProviderApp
        from webhooks import moderation

        apps = ProviderApp.objects.in_bulk({p[0] for p in pending})
        for app_pk, sender, room, rule, _at in pending:
            app = apps.get(app_pk)
            if app is None:
                continue
            moderation.mute_sender(
                app,
                sender,
                minutes=rule.minutes,
                room_id=room if rule.room_only else "",
                reason=f"escalation: {rule.hits} hits within {rule.within} s",
                kind=rule.kind,
                source="escalation",
            )
        return len(pending)

    def forget_stored(self) -> None:
        """After a rebuild loaded the stored sanctions: drop what has been written."""
        with self._lock:
            if not self._pending:
                self.overlay.clear()

    def reset(self) -> None:
        with self._lock:
            self._memory.clear()
            self.overlay.clear()
            self._pending = []


escalator = Escalator()


# --- what the hot path calls ------------------------------------------------------------


def muted(app: AppModeration, sender: str, room: str, now: float) -> Active | None:
    """The mute that answers this sender here, if any: a dictionary lookup, plus the
    overlay while this process holds sanctions it imposed and has not reloaded."""
    if app.sanctions:
        active = find(app.sanctions, sender, room, now, "mute")
        if active is not None:
            return active
    if escalator.overlay:
        return escalator.overlaid(app.pk, sender, room, now, "mute")
    return None


def after_verdict(
    app: AppModeration,
    sender: str,
    room: str,
    action: str,
    hit_ids: Iterable[int],
    now: float,
) -> tuple[Active | None, bool]:
    """(sanction that now answers the message, whether it goes to the review queue)
    for a message the rules judged ``action``. Counts a hit for escalation only when
    the message hit a rule (``action`` is not "allow")."""
    review = action == "flag" or bool(
        app.review_ids and app.review_ids.intersection(hit_ids)
    )
    answer: Active | None = None
    if action != "allow" and app.escalations:
        answer = escalator.hit(app.pk, sender, room, app.escalations, now)
    if not review:
        flagged = (
            find(app.sanctions, sender, room, now, "flag") if app.sanctions else None
        )
        if flagged is None and escalator.overlay:
            flagged = escalator.overlaid(app.pk, sender, room, now, "flag")
        review = flagged is not None
    if answer is not None and answer.kind == "flag":
        return None, True
    return answer, review
