"""JSON-RPC client for the agency's own node (Bitcoin Core-compatible and Ethereum nodes).

Batches calls into one HTTP request. Every failure is an ExternalServiceError that says which
node, what failed, and what to do; credentials never appear in messages.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from cointrail.errors import ExternalServiceError

Call = tuple[str, Sequence[Any]]


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


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
    ``.cookie`` alternative."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        cookie_file: str | None = None,
        jsonrpc: str = "1.0",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ExternalServiceError(
                f"node URL {_redact(url)!r} is not an http(s) URL; "
                "write it as http://user:password@127.0.0.1:8332/"
            )
        auth: tuple[str, str] | None = None
        if parts.username is not None:
            auth = (parts.username, parts.password or "")
        if cookie_file is not None:
            try:
                with open(cookie_file) as fh:
                    user, _, password = fh.read().strip().partition(":")
            except OSError as exc:
                raise ExternalServiceError(f"cannot read the cookie file {cookie_file}: {exc}") \
                    from exc
            auth = (user, password)
        self.url = _redact(url)
        netloc = self.url.split("://", 1)[1].split("/")[0]
        self._endpoint = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self._rest = f"{parts.scheme}://{netloc}/rest"
        self._jsonrpc = jsonrpc
        self._ids = itertools.count(1)
        self._http = httpx.Client(auth=auth, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request to the node; transport failures become ExternalServiceError."""
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ExternalServiceError(
                f"the node at {self.url} did not answer in time; check that it is running and "
                "not overloaded"
            ) from exc
        except httpx.HTTPError as exc:
            raise ExternalServiceError(
                f"cannot reach the node at {self.url} ({type(exc).__name__}); check that it is "
                "running and the URL is right"
            ) from exc

    def _post(self, payload: object) -> Any:
        response = self._send("POST", self._endpoint, json=payload)
        if response.status_code in (401, 403):
            raise ExternalServiceError(
                f"the node at {self.url} refused the credentials (HTTP {response.status_code}); "
                "check rpcuser/rpcpassword or the cookie file"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ExternalServiceError(
                f"the node at {self.url} sent a non-JSON answer (HTTP {response.status_code})"
            ) from exc

    def rest_block(self, block_hash: str) -> bytes:
        """One block's raw bytes from Bitcoin Core's REST interface (``/rest/block/H.bin``):
        no hex, no JSON, so the node and this side each do less work than ``getblock H 0``.

        Raises RestUnavailableError when the node does not serve REST (started without
        ``-rest``) or does not have the block."""
        response = self._send("GET", f"{self._rest}/block/{block_hash}.bin")
        if response.status_code != 200:
            detail = response.text.strip()[:200] or f"HTTP {response.status_code}"
            raise RestUnavailableError(
                f"the node at {self.url} did not serve block {block_hash} over REST ({detail}); "
                "start it with -rest=1, or sync with --no-rest"
            )
        return response.content

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
