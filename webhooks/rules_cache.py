"""The process's in-memory apps and compiled rule sets, rebuilt when the rules version moves.

A rebuild compiles aside and swaps one reference, so answers never wait for it: calls
that arrive meanwhile are answered from the previous snapshot.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from webhooks import enforcement, version
from webhooks.hot_settings import hot
from webhooks.matching import Rule, RuleSet
from webhooks.vocabulary import ACTIONS, KINDS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppRules:
    pk: int
    name: str
    provider: str
    app_id: int
    enabled: bool
    token: str = field(repr=False)
    fail_closed: bool
    ruleset: RuleSet | None  # None: the rules could not be built (see build_error)
    build_error: str = ""


@dataclass(frozen=True)
class Snapshot:
    token: str
    by_sdkappid: dict[int, AppRules]  # Tencent apps, by SdkAppid
    by_pk: dict[int, AppRules]
    built_at: float
    # Sanctions, escalation rules and review entries per app, read with the rules.
    moderation: dict[int, enforcement.AppModeration] = field(default_factory=dict)

    def moderation_for(self, app_pk: int) -> enforcement.AppModeration:
        return self.moderation.get(app_pk) or enforcement.AppModeration(app_pk)


def rule_from_row(row: Mapping[str, Any]) -> Rule:
    """A stored entry as the matcher's Rule. Raises ValueError on a corrupt row."""
    if row["kind"] not in KINDS:
        raise ValueError(f"entry {row['id']}: unknown kind {row['kind']!r}")
    if row["action"] not in ACTIONS:
        raise ValueError(f"entry {row['id']}: unknown action {row['action']!r}")
    expires = row["expires_at"]
    return Rule(
        id=row["id"],
        kind=row["kind"],
        term=row["term"],
        action=row["action"],
        code=row["code"],
        info=row["info"],
        expires_at=expires.timestamp() if expires is not None else None,
        exact=row["exact"],
        leet=row["leet"],
    )


def load_snapshot(token: str) -> Snapshot:
    """Read apps and active entries from the database and compile one RuleSet per
    distinct set of lists (apps without lists of their own share the global one)."""
    from django.db.models import Q
    from django.utils import timezone

    from messaging.models import ProviderApp
    from webhooks.models import BlocklistEntry

    rows = list(
        BlocklistEntry.objects.filter(enabled=True, blocklist__enabled=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .values(
            "id",
            "kind",
            "term",
            "action",
            "code",
            "info",
            "expires_at",
            "exact",
            "leet",
            "blocklist__app_id",
        )
    )
    shared: list[Mapping[str, Any]] = []
    per_app: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        app_pk = row["blocklist__app_id"]
        if app_pk is None:
            shared.append(row)
        else:
            per_app.setdefault(app_pk, []).append(row)

    compiled: dict[int | None, tuple[RuleSet | None, str]] = {}

    def compile_rows(key: int | None, items: Iterable[Mapping[str, Any]]) -> tuple:
        if key not in compiled:
            try:
                compiled[key] = (
                    RuleSet.compile((rule_from_row(r) for r in items), long_lived=True),
                    "",
                )
            except Exception as exc:
                # A stored row the services would never have written (the database
                # was edited by hand, or a bug): rather than silently run a partial
                # rule set, this app's calls get the fail policy the operator chose,
                # and the log says why.
                logger.exception("could not build the rules (app %s)", key)
                compiled[key] = (None, f"{type(exc).__name__}: {exc}")
        return compiled[key]

    by_pk: dict[int, AppRules] = {}
    by_sdkappid: dict[int, AppRules] = {}
    for app in ProviderApp.objects.all().only(
        "pk",
        "name",
        "provider",
        "app_id",
        "enabled",
        "webhook_token",
        "webhook_fail_closed",
    ):
        if app.pk in per_app:
            ruleset, err = compile_rows(app.pk, shared + per_app[app.pk])
        else:
            ruleset, err = compile_rows(None, shared)
        info = AppRules(
            pk=app.pk,
            name=app.name,
            provider=app.provider,
            app_id=app.app_id,
            enabled=app.enabled,
            token=app.webhook_token,
            fail_closed=app.webhook_fail_closed,
            ruleset=ruleset,
            build_error=err,
        )
        by_pk[app.pk] = info
        if app.provider == "tencent":
            by_sdkappid[app.app_id] = info
    return Snapshot(token, by_sdkappid, by_pk, time.time(), enforcement.load())


_caches: weakref.WeakSet[RulesCache] = weakref.WeakSet()


def _forget_checkers() -> None:
    for cache in list(_caches):
        cache._forget_checker()


os.register_at_fork(after_in_child=_forget_checkers)


class RulesCache:
    """The process's snapshot, checked against the version at most every
    WEBHOOK_VERSION_CHECK_SECONDS (so at most one cheap read per interval).

    A change made by another process is built aside, in a background thread, while calls
    go on being answered from the current snapshot; the new one replaces it in one
    reference assignment. The first build, a change made by this process (the moderator's
    own request, a test) and ``force_check`` build in the calling thread.

    The background thread is started once per process and woken for each check: starting
    a thread per check made the answering thread wait for the new one to run (py-spy:
    5.7% of the webhook's samples under load went to ``Thread.start``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._next_check = 0.0
        self._dirty = True
        self._seen_local = -1
        self._checker: threading.Thread | None = None
        # Checks asked for and checks done, under _checks (wait_for_build waits on it).
        self._checks = threading.Condition()
        self._asked = 0
        self._done = 0
        _caches.add(self)

    def mark_dirty(self) -> None:
        self._dirty = True

    def reset(self) -> None:
        with self._lock:
            self._snapshot = None
            self._dirty = True
            self._next_check = 0.0

    def ready(self) -> bool:
        """True when get() answers from memory, without reading the database in the
        calling thread (an async caller may then call it on its event loop)."""
        return (
            self._snapshot is not None
            and not self._dirty
            and self._seen_local == version.local_changes()
            and (hot().rebuild_in_background or time.monotonic() < self._next_check)
        )

    def get(self, *, force_check: bool = False) -> Snapshot:
        snapshot = self._snapshot
        if (
            snapshot is not None
            and not self._dirty
            and self._seen_local == version.local_changes()
            and not force_check
        ):
            if time.monotonic() < self._next_check:
                return snapshot
            if hot().rebuild_in_background:
                self._check_in_background()
                return snapshot
        return self._build_now(force_check)

    def _check_in_background(self) -> None:
        """Wake the background thread for the periodic version check: nobody waits for
        the version read (a Redis GET) nor for a build."""
        if not self._lock.acquire(blocking=False):
            return  # another thread is asking for the check
        try:
            if time.monotonic() < self._next_check:
                return
            self._next_check = time.monotonic() + settings.WEBHOOK_VERSION_CHECK_SECONDS
            if self._checker is None:
                self._checker = threading.Thread(
                    target=self._check_forever, name="webhook-rules-check", daemon=True
                )
                self._checker.start()
        finally:
            self._lock.release()
        with self._checks:
            self._asked += 1
            self._checks.notify_all()

    def _check_forever(self) -> None:
        while True:
            with self._checks:
                self._checks.wait_for(lambda: self._done < self._asked)
                asked = self._asked
            snapshot = self._snapshot
            try:
                if snapshot is not None:
                    self._build_aside(snapshot.token)
            except Exception:  # the thread must outlive any failure: it is the only one
                logger.exception("the webhook rules check failed")
            with self._checks:
                self._done = asked
                self._checks.notify_all()

    def wait_for_build(self, timeout: float = 30) -> None:
        """Wait until the checks asked for so far are done (tests, benchmarks)."""
        with self._checks:
            self._checks.wait_for(lambda: self._done >= self._asked, timeout)

    def _forget_checker(self) -> None:
        """In a forked child the thread does not exist: start it again there."""
        self._checker = None
        self._lock = threading.Lock()
        self._checks = threading.Condition()
        self._asked = self._done = 0

    def _build_aside(self, current_token: str) -> None:
        from django.db import connection

        started = time.monotonic()
        try:
            token = version.current_token()
            if token == current_token:
                return
            snapshot = load_snapshot(token)
        except Exception:
            # Keep answering from the rules we have; the next check tries again.
            logger.exception("could not refresh the webhook rules")
            return
        finally:
            connection.close()
        with self._lock:
            current = self._snapshot
            # A build in the calling thread may have finished meanwhile with newer rules.
            if current is None or current.built_at <= snapshot.built_at:
                self._snapshot = snapshot
                enforcement.escalator.forget_stored()
        logger.info(
            "webhook rules rebuilt aside (%s) in %.0f ms",
            token,
            (time.monotonic() - started) * 1000,
        )

    def _build_now(self, force_check: bool) -> Snapshot:
        with self._lock:
            snapshot = self._snapshot
            try:
                # Read the version before the data: a change committed meanwhile
                # moves the version again and is picked up at the next check.
                local = version.local_changes()
                token = version.current_token()
                if (
                    snapshot is None
                    or self._dirty
                    or local != self._seen_local
                    or token != snapshot.token
                ):
                    self._dirty = False
                    self._seen_local = local
                    started = time.monotonic()
                    snapshot = load_snapshot(token)
                    self._snapshot = snapshot
                    # The sanctions this process imposed and stored are in it now.
                    enforcement.escalator.forget_stored()
                    logger.info(
                        "webhook rules rebuilt (%s) in %.0f ms",
                        token,
                        (time.monotonic() - started) * 1000,
                    )
            except Exception:
                if snapshot is None:
                    raise
                # Keep answering from the rules we have; retry at the next interval.
                logger.exception("could not refresh the webhook rules")
            self._next_check = time.monotonic() + settings.WEBHOOK_VERSION_CHECK_SECONDS
            return snapshot


rules = RulesCache()
