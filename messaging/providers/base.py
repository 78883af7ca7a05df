"""What every provider client shares: the result type, credentials, the pooled HTTP
client, the one request path (``call``) and the retry policy (``retry_policy``).

A provider module builds its request and reads its answer; everything between (the
HTTP call, transport errors, HTTP statuses, a body that is not JSON) happens here,
once. Only the modules of this package import httpx.

Requests go out over keep-alive HTTP/1.1 connections driven by h11 (``KeepAlivePool``),
the protocol engine under httpx's own transport, without httpx's request and URL
models: those cost about 0.7 ms of CPU per request, as much as the rest of a bulk
send together (bench/bulk_send.py). httpx stays the vocabulary: its timeouts
(``TIMEOUT``), its TLS context and its exception classes, so a failure is classified
(``transport_failure``) and logged exactly as before. With a proxy set in the
environment the requests go through the httpx client, which honours it.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus, urlsplit

import h11
import httpx
from django.utils.translation import gettext as _
from django_stubs_ext import StrOrPromise

from liveadmin.logging import redact

logger = logging.getLogger(__name__)

# Tencent's REST backend gives up after 3 s and asks callers to wait longer than
# that (docs/providers.md, "Timeouts"), so the read timeout is above 3 s. Connecting should be
# quick; a slow connect is a network problem worth a (transport-level) retry.
TIMEOUT = httpx.Timeout(connect=3.0, read=6.0, write=6.0, pool=6.0)
# Retries of the transport cover failed connects only: a request that reached the
# provider is never sent twice by httpx (a repeated send could duplicate a message).
CONNECT_RETRIES = 2
POOL_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=20)
USER_AGENT = "LiveAdmin/0.1 (+httpx)"


class Outcome(StrEnum):
    OK = "ok"
    DROPPED = "dropped"  # accepted by the provider, not delivered (e.g. MsgFreqCtrl)
    FAILED = "failed"
    # The request may have reached the provider, but no answer says what happened
    # (read timeout, connection lost after sending, an unreadable answer).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    """The answer to one send, the same shape for every provider and kind."""

    outcome: Outcome
    action_status: str = ""
    error_code: int | None = None
    error_info: str = ""
    explanation: str = ""
    request_id: str = ""
    msg_seq: int | None = None
    msg_time: int | None = None
    drop_reason: str = ""
    http_status: int | None = None
    latency_ms: int = 0
    retryable: bool = False
    retry_after: float | None = None
    response_body: dict | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


@dataclass(frozen=True)
class Credentials:
    """What a client needs to call a provider for one app. ``secret`` never appears in
    a repr (and so never in a traceback's locals dump or a log line)."""

    provider: str
    app_id: int
    identifier: str
    secret: str = field(repr=False)
    base_url: str
    # ZEGO: the project's test environment (IsTest=true; docs/providers.md).
    test_environment: bool = False


@dataclass(frozen=True)
class CodeInfo:
    """How to treat one documented error code."""

    retryable: bool
    # Lazy (gettext_lazy) in the providers' tables: read with str() in the language
    # active where it is shown.
    explanation: StrOrPromise
    retry_after: float | None = None


def retryable(explanation: StrOrPromise, retry_after: float | None = None) -> CodeInfo:
    return CodeInfo(True, explanation, retry_after)


def permanent(explanation: StrOrPromise) -> CodeInfo:
    return CodeInfo(False, explanation)


def classify_code(
    codes: Mapping[int, CodeInfo], code: int, *, unknown: StrOrPromise
) -> CodeInfo:
    """How to treat ``code`` per a provider's table. An undocumented code is not
    retried: repeating an unknown failure could duplicate a delivered message.
    ``unknown`` has a ``%(code)s`` placeholder."""
    if code in codes:
        return codes[code]
    return permanent(str(unknown) % {"code": code})


def explain_code(classify: Callable[[int], CodeInfo], code: int | None) -> str:
    """The explanation of a result code for the UI ("Sent." for 0), in the active
    language."""
    if code is None:
        return ""
    if code == 0:
        return _("Sent.")
    return str(classify(code).explanation)


# --- retry policy ---------------------------------------------------------------------
# Which failures are retried, in one place (DESIGN.md "Delivery semantics"): only
# what surely did not reach the provider, a documented retryable code, or (by the
# caller) a kind the provider de-duplicates. ``failure`` is one of:
#   "connect"    no connection was made (refused, DNS, connect or pool timeout)
#   "busy"       HTTP 429 or 503: refused before any processing
#   "transport"  the request may have reached the provider (read timeout, lost connection)
#   "http_5xx"   another HTTP 5xx from the provider or a gateway (may have been processed)
#   "http_4xx"   any other HTTP status but 200 (a wrong address)
#   "unreadable" HTTP 200 whose body is not a JSON object
#   "no_code"    a JSON answer without a result code
#   "code"       the provider's error code, classified by its table (``info``)
#   "dropped"    accepted but not delivered (Tencent's MsgFreqCtrl)
#   "invalid_url" the app's base URL cannot be used

# Failures after which the message may or may not have been delivered: their
# outcome is ``unknown`` and they are never repeated blindly.
MAYBE_DELIVERED = frozenset({"transport", "http_5xx", "unreadable", "no_code"})
# Transport errors raised before a complete request was handed over.
NOT_SENT_ERRORS: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,  # refused, unreachable, DNS failure
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
NOT_PROCESSED_STATUSES = frozenset({429, 503})


def unknown_explanation(why: str, status: int | None = None) -> str:
    """Why the outcome is ``unknown``, one whole sentence per cause (``why``:
    "timeout", "lost", "http_5xx" with ``status``, or "unreadable")."""
    if why == "timeout":
        return _(
            "The request may have reached the provider, but no answer came back (the "
            "provider did not answer in time). The message may or may not have been "
            "delivered, so it is not sent again by itself: check the room, then re-send "
            "it explicitly if it is missing."
        )
    if why == "http_5xx":
        return _(
            "The request may have reached the provider, but no answer came back (the "
            "provider answered HTTP %(status)s, a server or gateway error). The message "
            "may or may not have been delivered, so it is not sent again by itself: check "
            "the room, then re-send it explicitly if it is missing."
        ) % {"status": status}
    if why == "unreadable":
        return _(
            "The request may have reached the provider, but no answer came back (its "
            "answer could not be read). The message may or may not have been delivered, "
            "so it is not sent again by itself: check the room, then re-send it "
            "explicitly if it is missing."
        )
    return _(
        "The request may have reached the provider, but no answer came back (the "
        "connection was lost after the request was sent). The message may or may not "
        "have been delivered, so it is not sent again by itself: check the room, then "
        "re-send it explicitly if it is missing."
    )


def retry_policy(
    failure: str, info: CodeInfo | None = None, *, retry_after: float | None = None
) -> tuple[bool, float | None]:
    """(retryable, seconds to wait first) for a failed send."""
    if failure == "code" and info is not None:
        return info.retryable, info.retry_after
    if failure in ("connect", "dropped"):
        return True, 1.0
    if failure == "busy":
        return True, retry_after if retry_after is not None else 1.0
    return False, None


def failure_outcome(failure: str) -> Outcome:
    """``unknown`` when the message may have been delivered, else ``failed``."""
    return Outcome.UNKNOWN if failure in MAYBE_DELIVERED else Outcome.FAILED


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """The process's one pooled client (keep-alive, as Tencent's FAQ asks).

    Built lazily so that importing this module opens nothing; a forked worker that
    inherits a client before first use is not possible since none exists at import.
    """
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = httpx.Client(
                    timeout=TIMEOUT,
                    transport=httpx.HTTPTransport(
                        retries=CONNECT_RETRIES, limits=POOL_LIMITS
                    ),
                    headers={"User-Agent": USER_AGENT},
                    follow_redirects=False,
                )
    return _client


def _forget_client() -> None:
    # A forked worker (Celery prefork) must not share the parent's pooled sockets.
    global _client, _pool
    _client = None
    _pool = None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: what ``call`` reads of it (an httpx.Response has the same)."""

    status_code: int
    headers: Mapping[str, str]  # names in lower case
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def _query(params: Any) -> str:
    """The query string as httpx writes it (``QueryParams``: urlencode of the items,
    a list value repeated), each name and value quoted once per process: the
    UserSig alone is hundreds of characters, quoted one by one."""
    mapping = isinstance(params, Mapping)
    pairs: list[str] = []
    for name, value in params.items() if mapping else params:
        values = value if mapping and isinstance(value, list | tuple) else (value,)
        pairs.extend(f"{_quoted(str(name))}={_quoted(_text(v))}" for v in values)
    return "&".join(pairs)


def _text(value: Any) -> str:
    # httpx's primitive_value_to_str: true/false, None as empty.
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


@lru_cache(maxsize=512)
def _quoted(text: str) -> str:
    return quote_plus(text)


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: str


@lru_cache(maxsize=256)
def _split(url: str) -> tuple[_Origin, str]:
    """(origin, request target) of an absolute http(s) URL; raises as httpx does."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname or ""
        if host and not host.isascii():
            host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise httpx.InvalidURL(f"Invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{parts.scheme}://'."
        )
    if not host or any(c in url for c in " \r\n\t"):
        raise httpx.InvalidURL("Invalid URL: no host, or whitespace in it")
    default = 443 if parts.scheme == "https" else 80
    host_header = host if port in (None, default) else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal
        host_header = f"[{host}]" if port in (None, default) else f"[{host}]:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Origin(parts.scheme, host, port or default, host_header), target


class KeepAlivePool:
    """Keep-alive HTTP/1.1 connections per origin, each driven by h11.

    The same contract as the httpx client it replaces on the send path: explicit
    connect, read, write and pool timeouts (``TIMEOUT``, read at each request); a
    failed connect is retried CONNECT_RETRIES times and nothing else is ever
    repeated; at most POOL_LIMITS.max_connections connections, of which
    max_keepalive_connections are kept idle; an idle connection the server closed
    is dropped before use. Failures raise httpx's exception classes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[tuple[socket.socket, h11.Connection]]] = {}
        self._slots = threading.BoundedSemaphore(POOL_LIMITS.max_connections or 100)
        self._ssl: ssl.SSLContext | None = None

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        origin, target = _split(url)
        if params:
            target += ("&" if "?" in target else "?") + _query(params)
        request_headers = [("Host", origin.host_header), ("User-Agent", USER_AGENT)]
        if content is not None or method in ("POST", "PUT", "PATCH"):
            request_headers.append(("Content-Length", str(len(content or b""))))
        if headers:
            request_headers.extend(headers.items())
        timeout = TIMEOUT
        if not self._slots.acquire(timeout=timeout.pool):
            raise httpx.PoolTimeout("no free connection in the pool")
        try:
            sock, conn = self._connection(origin, timeout)
            try:
                answer = self._exchange(
                    sock, conn, method, target, request_headers, content, timeout
                )
            except BaseException:
                sock.close()
                raise
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
                self._keep(origin, sock, conn)
            else:
                sock.close()
            return answer
        finally:
            self._slots.release()

    def _connection(
        self, origin: _Origin, timeout: httpx.Timeout
    ) -> tuple[socket.socket, h11.Connection]:
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                pair = idle.pop() if idle else None
            if pair is None:
                return self._connect(origin, timeout), h11.Connection(h11.CLIENT)
            # Readable while idle: the server closed it (or sent junk). Drop it.
            if select.select([pair[0]], [], [], 0)[0]:
                pair[0].close()
                continue
            return pair

    def _connect(self, origin: _Origin, timeout: httpx.Timeout) -> socket.socket:
        delays = [0.0, 0.5, 1.0][:CONNECT_RETRIES]
        while True:
            try:
                return self._open(origin, timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if not delays:
                    raise
                time.sleep(delays.pop(0))

    def _open(self, origin: _Origin, timeout: httpx.Timeout) -> socket.socket:
        try:
            sock = socket.create_connection(
                (origin.host, origin.port), timeout=timeout.connect
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if origin.scheme == "https":
                if self._ssl is None:
                    self._ssl = httpx.create_ssl_context()
                sock = self._ssl.wrap_socket(sock, server_hostname=origin.host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out") from None
        except OSError as exc:  # ssl.SSLError is an OSError
            sock.close()
            raise httpx.ConnectError(str(exc)) from None
        return sock

    def _exchange(
        self,
        sock: socket.socket,
        conn: h11.Connection,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        content: bytes | None,
        timeout: httpx.Timeout,
    ) -> Answer:
        try:
            data = conn.send(h11.Request(method=method, target=target, headers=headers))
            if content:
                data = (data or b"") + (conn.send(h11.Data(data=content)) or b"")
            data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from None
        try:
            sock.settimeout(timeout.write)
            sock.sendall(data)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc) or "timed out") from None
        except OSError as exc:
            raise httpx.WriteError(str(exc)) from None
        sock.settimeout(timeout.read)
        status = 0
        answer_headers: dict[str, str] = {}
        body: list[bytes] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from None
            if event is h11.NEED_DATA:
                try:
                    received = sock.recv(65536)
                except TimeoutError as exc:
                    raise httpx.ReadTimeout(str(exc) or "timed out") from None
                except OSError as exc:
                    raise httpx.ReadError(str(exc)) from None
                if not received and conn.their_state is h11.SEND_RESPONSE:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                conn.receive_data(received)
            elif isinstance(event, h11.Response):
                status = event.status_code
                answer_headers = {
                    name.decode("latin-1"): value.decode("latin-1")
                    for name, value in event.headers
                }
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return Answer(status, answer_headers, b"".join(body))

    def close(self) -> None:
        """Close the idle connections (a connection in use closes when its request ends)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for pairs in idle.values():
            for sock, _connection in pairs:
                sock.close()

    def _keep(self, origin: _Origin, sock: socket.socket, conn: h11.Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < (POOL_LIMITS.max_keepalive_connections or 0):
                idle.append((sock, conn))
                return
        sock.close()


_pool: KeepAlivePool | None = None


def keepalive_pool() -> KeepAlivePool | None:
    """The process's keep-alive pool, or None when the environment names a proxy
    (then the httpx client, which honours it, carries the requests)."""
    global _pool
    if _proxied():
        return None
    if _pool is None:
        with _client_lock:
            if _pool is None:
                _pool = KeepAlivePool()
    return _pool


@lru_cache(maxsize=1)
def _proxied() -> bool:
    return bool({"http", "https", "all"} & set(urllib.request.getproxies_environment()))


os.register_at_fork(after_in_child=_forget_client)


def elapsed_ms(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


def transport_failure(exc: httpx.HTTPError, *, started: float, what: str) -> SendResult:
    """A request that got no HTTP answer.

    Retryable when the request surely did not reach the provider (NOT_SENT_ERRORS);
    otherwise (read timeout, connection lost after sending) the outcome is
    ``unknown`` and nothing retries it blindly. The message names the failure
    class, never the URL (which carries the usersig or the signature).
    """
    if isinstance(exc, NOT_SENT_ERRORS):
        failure = "connect"
        info = f"{type(exc).__name__}: {redact(str(exc))}"
        explanation = _(
            "The provider could not be reached (no connection). Nothing was sent; it "
            "is retried automatically. If it persists, check the base URL or region "
            "and the network."
        )
    else:
        failure = "transport"
        if isinstance(exc, httpx.TimeoutException):
            info = f"{type(exc).__name__}: no answer from the provider in time"
            explanation = unknown_explanation("timeout")
        else:
            info = f"{type(exc).__name__}: {redact(str(exc))}"
            explanation = unknown_explanation("lost")
    logger.warning("%s: transport failure (%s) %s", what, failure, info)
    is_retryable, retry_after = retry_policy(failure)
    return SendResult(
        outcome=failure_outcome(failure),
        error_info=info[:500],
        explanation=explanation,
        latency_ms=elapsed_ms(started),
        retryable=is_retryable,
        retry_after=retry_after,
    )


def invalid_url_failure(exc: Exception, *, what: str) -> SendResult:
    """The app's base URL cannot be used at all: nothing was sent, retrying won't help."""
    logger.warning("%s: invalid URL (%s)", what, type(exc).__name__)
    return SendResult(
        outcome=Outcome.FAILED,
        error_info=f"{type(exc).__name__}: the API URL is not valid",
        explanation=_(
            "The app's base URL is not a valid http(s) URL. Fix it in the app settings."
        ),
        retryable=retry_policy("invalid_url")[0],
    )


def http_failure(
    response: Answer | httpx.Response, *, started: float, what: str
) -> SendResult | None:
    """Classify an HTTP status other than 200. None means "read the JSON body"."""
    status = response.status_code
    if status == 200:
        return None
    if status in NOT_PROCESSED_STATUSES:
        failure = "busy"
        explanation = _(
            "The provider answered HTTP %(status)s (busy or unavailable). Nothing was "
            "sent; it is retried automatically."
        ) % {"status": status}
    elif status >= 500:
        # A gateway or server error after the request went in: it may have been
        # processed, so it is not repeated blindly.
        failure = "http_5xx"
        explanation = unknown_explanation("http_5xx", status)
    else:
        failure = "http_4xx"
        explanation = _(
            "The provider answered HTTP %(status)s. The API address is probably wrong: "
            "check the app's region and base URL."
        ) % {"status": status}
    is_retryable, retry_after = retry_policy(
        failure, retry_after=_retry_after(response.headers.get("retry-after"))
    )
    logger.warning("%s: HTTP %s", what, status)
    return SendResult(
        outcome=failure_outcome(failure),
        error_info=f"HTTP {status}",
        explanation=explanation,
        http_status=status,
        latency_ms=elapsed_ms(started),
        retryable=is_retryable,
        retry_after=retry_after if retry_after is not None else 1.0,
        response_body=_json_or_none(response),
    )


def unreadable_answer(
    response: Answer | httpx.Response, *, started: float
) -> SendResult:
    # A 200 whose body is not a JSON object: whether the message went out is
    # unknown, so it is not retried blindly (a retry could duplicate it).
    return SendResult(
        outcome=failure_outcome("unreadable"),
        error_info="the answer is not a JSON object",
        explanation=unknown_explanation("unreadable"),
        http_status=response.status_code,
        latency_ms=elapsed_ms(started),
        retryable=retry_policy("unreadable")[0],
        response_body={"text": response.text[:1000]},
    )


# Reads a provider's JSON answer: (data, HTTP status, latency in ms) -> SendResult.
AnswerParser = Callable[[dict[str, Any], int, int], SendResult]


def call(
    method: str,
    url: str,
    *,
    what: str,
    parse: AnswerParser,
    params: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> SendResult:
    """Make one request and return one SendResult, whatever happens.

    ``what`` names the call in logs (never the URL: it carries the usersig or the
    signature); ``parse`` reads a JSON object answered with HTTP 200.
    """
    started = time.monotonic()
    try:
        pool = keepalive_pool()
        if pool is not None:
            response: Answer | httpx.Response = pool.request(
                method, url, params=params, content=content, headers=headers
            )
        else:
            response = http_client().request(
                method, url, params=params, content=content, headers=headers
            )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return invalid_url_failure(exc, what=what)
    except httpx.HTTPError as exc:
        return transport_failure(exc, started=started, what=what)
    result = http_failure(response, started=started, what=what)
    if result is None:
        data = _json_or_none(response)
        if data is None:
            result = unreadable_answer(response, started=started)
        else:
            result = parse(data, response.status_code, elapsed_ms(started))
    logger.debug(
        "%s: outcome=%s code=%s request_id=%s latency_ms=%s",
        what,
        result.outcome,
        result.error_code,
        result.request_id,
        result.latency_ms,
    )
    return result


def _json_or_none(response: Answer | httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def as_int(value: Any) -> int | None:
    """Providers send numbers; tolerate numeric strings, reject anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))
