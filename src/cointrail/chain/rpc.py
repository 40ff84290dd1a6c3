"""JSON-RPC client for the agency's own node (Bitcoin Core-compatible and Ethereum nodes).

Batches calls into one HTTP request. Every failure is an ExternalServiceError that says which
node, what failed, and what to do; credentials never appear in messages.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from cointrail.errors import ExternalServiceError, InputError

Call = tuple[str, Sequence[Any]]
_URL_EXAMPLE = "http://user:password@127.0.0.1:8332/"


def _redact(url: str) -> str:
    """`url` without credentials, query or fragment (a parsed, checked URL)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _redact_text(url: str) -> str:
    """`url` as given without a ``user:password@`` part, for a URL that does not parse."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.rpartition("@")[2]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return f"{scheme}://{rest[:end].rpartition('@')[2]}{rest[end:]}"


def parse_node_url(url: str) -> SplitResult:
    """`url` split and checked: http(s), a host, a port in 1-65535 if given.

    Raises InputError naming the problem (credentials left out of the message)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        raise InputError(
            f"node URL {_redact_text(url.strip())!r} is not a valid URL ({exc}); write it as "
            f"{_URL_EXAMPLE}"
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"node URL {_redact_text(url.strip())!r} is not an http(s) URL with a host; write "
            f"it as {_URL_EXAMPLE}"
        )
    if port == 0:
        raise InputError(
            f"node URL {_redact_text(url.strip())!r} has port 0; give the node's RPC port, "
            f"e.g. {_URL_EXAMPLE}"
        )
    return parts


def read_cookie(path: str) -> tuple[str, str]:
    """(user, password) from Bitcoin Core's ``.cookie`` file (one ``user:password`` line).

    Raises InputError when the file is unreadable or holds no ``user:password``."""
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise InputError(
            f"cannot read the cookie file {path}: {reason}; pass the node's .cookie file "
            "(in its data directory)"
        ) from exc
    user, colon, password = text.partition(":")
    if not colon or not user or not password or "\n" in text:
        raise InputError(
            f"the cookie file {path} is malformed: it should hold one user:password line "
            "(Core writes __cookie__:<hex>); pass the node's .cookie file, or put the "
            f"credentials in the URL ({_URL_EXAMPLE})"
        )
    return user, password


class NodeRpcError(ExternalServiceError):
    """The node answered a call with an error object."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"node error for {method}: {message} (code {code})")
        self.method = method
        self.code = code


class RestUnavailableError(ExternalServiceError):
    """The node does not serve its REST interface (started without ``-rest``)."""


class RpcClient:
    """A JSON-RPC client. `url` may carry ``user:password@``; `cookie_file` is Core's
    ``.cookie`` alternative. A malformed URL or cookie file raises InputError."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        cookie_file: str | None = None,
        jsonrpc: str = "1.0",
    ) -> None:
        url = url.strip()
        parts = parse_node_url(url)
        auth: tuple[str, str] | None = None
        if parts.username is not None:
            auth = (parts.username, parts.password or "")
        if cookie_file is not None:
            auth = read_cookie(cookie_file)
        self.url = _redact(url)
        self._path = parts.path or "/"
        self._host = (parts.scheme, parts.hostname or "", parts.port)
        self._headers = {"Content-Type": "application/json"}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._timeout = timeout
        self._jsonrpc = jsonrpc
        self._ids = itertools.count(1)
        # idle keep-alive connections, one taken per request (the prefetch thread and the
        # ingesting thread each use one at a time)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for con in self._idle:
                con.close()
            self._idle.clear()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One HTTP request to the node over an idle keep-alive connection, or a new one;
        (status, body). Python's http.client: a chain of raw blocks came 25-30 % faster than
        through httpx, whose streaming reads cost more per byte, and the command starts
        without importing an HTTP stack. A connection the node closed while idle (Core
        closes them after -rpcservertimeout) is replaced once; transport failures become
        ExternalServiceError."""
        for attempt in range(2):
            with self._lock:
                con = self._idle.pop() if self._idle else None
            reused = con is not None
            if con is None:
                scheme, host, port = self._host
                factory = (http.client.HTTPSConnection if scheme == "https"
                           else http.client.HTTPConnection)
                con = factory(host, port, timeout=self._timeout)
            try:
                con.request(method, path, body=body, headers=headers or {})
                response = con.getresponse()
                answer = response.status, response.read()
            except TimeoutError as exc:
                con.close()
                raise ExternalServiceError(
                    f"the node at {self.url} did not answer in time; check that it is running "
                    "and not overloaded"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                con.close()
                stale = isinstance(exc, ConnectionResetError | BrokenPipeError
                                   | http.client.RemoteDisconnected)
                if reused and stale and attempt == 0:
                    continue  # the node closed the idle connection: open a new one
                raise ExternalServiceError(
                    f"cannot reach the node at {self.url} ({type(exc).__name__}); check that it "
                    "is running and the URL is right"
                ) from exc
            if response.will_close:
                con.close()
            else:
                with self._lock:
                    self._idle.append(con)
            return answer
        raise AssertionError("unreachable")

    def _post(self, payload: object) -> Any:
        status, body = self._request("POST", self._path, json.dumps(payload).encode(),
                                     self._headers)
        if status in (401, 403):
            raise ExternalServiceError(
                f"the node at {self.url} refused the credentials (HTTP {status}); "
                "check rpcuser/rpcpassword or the cookie file"
            )
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ExternalServiceError(
                f"the node at {self.url} sent a non-JSON answer (HTTP {status})"
            ) from exc

    @property
    def timeout(self) -> float:
        """Seconds a request may wait for the node (also the P2P fetch's, `cointrail.chain.p2p`)."""
        return self._timeout

    def rest_block(self, block_hash: str) -> bytes:
        """One block's raw bytes from Bitcoin Core's REST interface (``/rest/block/H.bin``):
        no hex, no JSON, so the node and this side each do less work than ``getblock H 0``.

        Raises RestUnavailableError when the node does not serve REST (started without
        ``-rest``) or does not have the block."""
        status, body = self._request("GET", f"/rest/block/{block_hash}.bin")
        if status != 200:
            detail = body.decode("utf-8", "replace").strip()[:200] or f"HTTP {status}"
            raise RestUnavailableError(
                f"the node at {self.url} did not serve block {block_hash} over REST ({detail}); "
                "start it with -rest=1, or sync with --no-rest"
            )
        return body

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, params)])[0]

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Run calls in one request; results in call order. Any error raises NodeRpcError."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": self._jsonrpc, "id": i, "method": m, "params": list(p)}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        answer = self._post(payload)
        if isinstance(answer, dict):  # some nodes answer a failed batch with one error
            error = answer.get("error") or {}
            raise NodeRpcError("batch", error.get("code"), str(error.get("message", answer)))
        by_id = {item.get("id"): item for item in answer}
        results = []
        for i, (method, _) in zip(ids, calls, strict=True):
            item = by_id.get(i)
            if item is None:
                raise ExternalServiceError(f"the node at {self.url} did not answer {method}")
            if item.get("error"):
                err = item["error"]
                raise NodeRpcError(method, err.get("code"), str(err.get("message")))
            results.append(item.get("result"))
        return results
