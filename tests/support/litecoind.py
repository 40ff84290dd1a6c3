"""A real ``litecoind -regtest`` node for integration tests.

`LitecoindNode` starts the daemon in a fresh temporary data directory, with RPC and P2P bound to
the loopback interface on free ports and credentials generated for the run, waits until the RPC
answers, and talks JSON-RPC 1.0 to it over httpx.

When the ``litecoind`` binary is absent the tests are skipped, unless the environment variable
``CI`` is set (to anything but ``""``/``0``/``false``): in CI a missing node is a failure, so a
broken runner image cannot silently turn the integration suite into a no-op.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

LOOPBACK = "127.0.0.1"
BINARY = "litecoind"


class RpcError(RuntimeError):
    """The node answered a JSON-RPC call with an error (or not at all)."""

    def __init__(self, method: str, params: Sequence[Any], code: int | None, message: str) -> None:
        shown = ", ".join(repr(p) for p in params)
        if len(shown) > 300:
            shown = shown[:300] + "..."
        super().__init__(f"litecoind RPC {method}({shown}) failed: {message} (code {code})")
        self.method = method
        self.code = code
        self.node_message = message


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_binary(name: str = BINARY) -> str:
    """The path of `name`; skips the test if it is missing, fails instead under CI."""
    path = shutil.which(name)
    if path is None:
        message = (
            f"{name} is not installed (not on PATH); run scripts/install-services.sh as root "
            "to install it"
        )
        if in_ci():
            pytest.fail(f"{message}. CI is set, so a missing {name} is an error, not a skip.")
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)  # Core accepts amounts as strings
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot send {type(value).__name__} to litecoind")


def to_sat(amount: Decimal | int | str) -> int:
    """An RPC amount (LTC, exact Decimal) in satoshi; raises if it is not whole satoshi."""
    sat = Decimal(amount) * 100_000_000
    if sat != sat.to_integral_value():
        raise ValueError(f"amount {amount} is not a whole number of satoshi")
    return int(sat)


class LitecoindNode:
    """One ``litecoind -regtest`` process with its own data directory.

    Use as a context manager, or call `start` and `stop` yourself. `extra_args` are appended to
    the command line (e.g. ``["-listen=1"]`` when peers are needed).
    """

    def __init__(
        self,
        extra_args: Iterable[str] = (),
        datadir: Path | None = None,
        listen: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        self.binary = require_binary()
        self._own_datadir = datadir is None
        self.datadir = Path(datadir or tempfile.mkdtemp(prefix="cointrail-ltc-"))
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        while self.p2p_port == self.rpc_port:
            self.p2p_port = free_port()
        self.rpc_user = "ct" + secrets.token_hex(6)
        self.rpc_password = secrets.token_hex(16)
        self.listen = listen
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None
        self._next_id = 0
        self._log_file: Any = None

    # -- paths ---------------------------------------------------------------------------

    @property
    def network_dir(self) -> Path:
        return self.datadir / "regtest"

    @property
    def blocks_dir(self) -> Path:
        """Where the node writes ``blk*.dat`` / ``rev*.dat``."""
        return self.network_dir / "blocks"

    @property
    def debug_log(self) -> Path:
        return self.network_dir / "debug.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.rpc_port}/"

    # -- lifecycle -----------------------------------------------------------------------

    def command(self) -> list[str]:
        return [
            self.binary,
            "-regtest",
            f"-datadir={self.datadir}",
            "-server=1",
            "-txindex=1",
            "-fallbackfee=0.0001",
            f"-rpcuser={self.rpc_user}",
            f"-rpcpassword={self.rpc_password}",
            f"-rpcbind={LOOPBACK}:{self.rpc_port}",
            f"-rpcport={self.rpc_port}",
            f"-rpcallowip={LOOPBACK}",
            f"-port={self.p2p_port}",
            *([f"-bind={LOOPBACK}:{self.p2p_port}", "-listen=1"] if self.listen else ["-listen=0"]),
            "-dnsseed=0",
            "-discover=0",
            "-upnp=0",
            "-printtoconsole=0",
            "-rpcworkqueue=64",
            *self.extra_args,
        ]

    def start(self) -> LitecoindNode:
        if self.process is not None:
            raise RuntimeError("node already started")
        self.datadir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.datadir / "stdout-stderr.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(), stdout=self._log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._client = httpx.Client(
            auth=(self.rpc_user, self.rpc_password),
            timeout=httpx.Timeout(120.0, connect=5.0),
            headers={"content-type": "text/plain"},
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop(timeout=10)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"litecoind exited with code {code} during startup; "
                    f"last log lines:\n{self.log_tail()}"
                )
            try:
                self.rpc("getblockchaininfo")
                return
            except RpcError as exc:
                last = str(exc)  # -28: warming up (loading block index, ...)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise RuntimeError(
            f"litecoind RPC not ready after {self.startup_timeout:.0f}s ({last}); "
            f"last log lines:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node: RPC ``stop``, wait for the process, kill it if it takes too long.

        The data directory is kept (tests may read the block files); `cleanup` removes it.
        """
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                self.rpc("stop")
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self.process = None

    def restart(self) -> None:
        """Stop the node (which flushes and closes its block files) and start it again on the
        same data directory and ports."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the node and delete its data directory if this object created it."""
        self.stop()
        if self._own_datadir:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self) -> LitecoindNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        for path in (self.debug_log, self.datadir / "stdout-stderr.log"):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                return "\n".join(text.splitlines()[-lines:])
        return "(no log output)"

    # -- RPC -----------------------------------------------------------------------------

    def _post(self, payload: Any, path: str = "") -> Any:
        if self._client is None:
            raise RuntimeError("node is not running")
        body = json.dumps(payload, default=_json_default)
        response = self._client.post(self.url + path, content=body)
        if response.status_code == 401:
            raise RpcError("(auth)", (), 401, "RPC authentication failed")
        try:
            # Amounts stay exact: JSON numbers with a fraction become Decimal.
            return json.loads(response.text, parse_float=Decimal)
        except ValueError:
            raise RpcError(
                "(http)", (), response.status_code,
                f"HTTP {response.status_code}: {response.text[:300]!r}",
            ) from None

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        """Call `method`; raises RpcError carrying the node's message on failure."""
        payload = {"jsonrpc": "1.0", "id": self._id(), "method": method, "params": list(params)}
        path = f"wallet/{wallet}" if wallet is not None else ""
        body = self._post(payload, path)
        error = body.get("error") if isinstance(body, dict) else None
        if error:
            raise RpcError(method, params, error.get("code"), error.get("message", str(error)))
        return body["result"]

    def batch(
        self, calls: Iterable[tuple[str, Sequence[Any]] | Sequence[Any]], wallet: str | None = None
    ) -> list[Any]:
        """Several calls in one HTTP request; `calls` are ``(method, params)`` pairs.

        Returns the results in order; the first failing call raises RpcError.
        """
        requests = []
        for call in calls:
            method, params = call[0], list(call[1]) if len(call) > 1 else []
            requests.append(
                {"jsonrpc": "1.0", "id": self._id(), "method": method, "params": params}
            )
        if not requests:
            return []
        path = f"wallet/{wallet}" if wallet is not None else ""
        answers = self._post(requests, path)
        if not isinstance(answers, list):
            error = answers.get("error") if isinstance(answers, dict) else answers
            raise RpcError("(batch)", (), None, f"unexpected batch answer: {error!r}")
        by_id = {a["id"]: a for a in answers}
        results = []
        for req in requests:
            answer = by_id.get(req["id"])
            if answer is None:
                raise RpcError(req["method"], req["params"], None, "no answer in batch reply")
            if answer.get("error"):
                err = answer["error"]
                raise RpcError(req["method"], req["params"], err.get("code"), err.get("message"))
            results.append(answer["result"])
        return results

    def mine(self, n: int, address: str) -> list[str]:
        """Mine `n` blocks paying `address`; returns their hashes."""
        return list(self.rpc("generatetoaddress", n, address))

    def best_chain(self) -> list[str]:
        """The hashes of the active chain, genesis first."""
        height = int(self.rpc("getblockcount"))
        return list(self.batch(("getblockhash", [h]) for h in range(height + 1)))
