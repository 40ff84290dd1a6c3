"""A real ``anvil`` Ethereum dev node for integration tests.

`AnvilNode` starts ``anvil --host 127.0.0.1 --port <free>`` (chain id 31337, one block per
transaction), waits until it answers, and stops it. The dev accounts sign their transactions
(their hashes recompute); `impersonate` lets a test send from any other address (e.g. an
exchange's deposit addresses) — anvil then leaves such transactions unsigned. `Contracts`
deploys and calls the test contracts compiled from ``tests/data/eth/Contracts.sol``
(``scripts/compile-erc20.mjs``).

The ABI encoder here covers only the argument types those contracts take (uint, address,
string, address[]): a dependency for that would be larger than the code.

When ``anvil`` is absent the tests are skipped, unless ``CI`` is set (then they fail).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.litecoind import LOOPBACK, free_port, require_binary

CONTRACTS = Path(__file__).resolve().parents[1] / "data" / "eth" / "contracts.json"
DEV_ACCOUNTS = 10


class AnvilError(RuntimeError):
    """anvil answered a call with an error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"anvil {method}: {error.get('message')} (code {error.get('code')})")
        self.code = error.get("code")


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def abi_encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """ABI-encode `values` of `types` (uint*, address, string, address[])."""
    head: list[bytes] = []
    tail = b""
    dynamic_at: list[tuple[int, bytes]] = []
    for kind, value in zip(types, values, strict=True):
        if kind.startswith("uint"):
            head.append(_word(int(value)))
        elif kind == "address":
            head.append(bytes.fromhex(value[2:]).rjust(32, b"\0"))
        elif kind == "string":
            raw = value.encode()
            padded = raw + b"\0" * (-len(raw) % 32)
            dynamic_at.append((len(head), _word(len(raw)) + padded))
            head.append(b"")
        elif kind == "address[]":
            body = _word(len(value)) + b"".join(
                bytes.fromhex(a[2:]).rjust(32, b"\0") for a in value)
            dynamic_at.append((len(head), body))
            head.append(b"")
        else:
            raise ValueError(f"abi_encode does not know {kind}")
    offset = 32 * len(head)
    for index, body in dynamic_at:
        head[index] = _word(offset + len(tail))
        tail += body
    return b"".join(head) + tail


class AnvilNode:
    """One running anvil; `url` is its JSON-RPC endpoint on the loopback interface."""

    def __init__(self, binary: str, port: int, process: subprocess.Popen[bytes]) -> None:
        self.binary = binary
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self.process = process
        self._http = httpx.Client(timeout=30)
        self._id = 0
        self.accounts: list[str] = []

    def rpc(self, method: str, *params: Any) -> Any:
        self._id += 1
        answer = self._http.post(self.url, json={"jsonrpc": "2.0", "id": self._id,
                                                 "method": method, "params": list(params)})
        body = answer.json()
        if body.get("error"):
            raise AnvilError(method, body["error"])
        return body.get("result")

    def send(self, sender: str, to: str | None, value: int = 0, data: bytes = b"",
             gas: int | None = None) -> dict[str, Any]:
        """Send a transaction (mined at once); returns its receipt."""
        tx: dict[str, Any] = {"from": sender, "value": hex(value), "data": "0x" + data.hex()}
        if to is not None:
            tx["to"] = to
        if gas is not None:
            tx["gas"] = hex(gas)
        tx_hash = self.rpc("eth_sendTransaction", tx)
        deadline = time.monotonic() + 30
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None:
            assert time.monotonic() < deadline, f"{tx_hash} was not mined"
            time.sleep(0.01)  # anvil mines on its own task, a moment after the send
        return dict(receipt)

    def impersonate(self, address: str) -> None:
        """Let `address` send transactions (anvil_impersonateAccount; unsigned on chain)."""
        self.rpc("anvil_impersonateAccount", address)

    def balance(self, address: str, block: str | int = "latest") -> int:
        tag = hex(block) if isinstance(block, int) else block
        return int(self.rpc("eth_getBalance", address, tag), 16)

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def close(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def start_anvil(*extra: str) -> Iterator[AnvilNode]:
    """Start anvil on a free loopback port; stop it when the block ends."""
    binary = require_binary("anvil")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--host", LOOPBACK, "--port", str(port), "--accounts", str(DEV_ACCOUNTS),
         *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    node = AnvilNode(binary, port, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                node.accounts = list(node.rpc("eth_accounts"))
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"anvil did not start on port {port}: {err[-500:]}")
                time.sleep(0.1)
        yield node
    finally:
        node.close()


class Contracts:
    """The compiled test contracts, deployed and called through an AnvilNode."""

    def __init__(self, node: AnvilNode) -> None:
        self.node = node
        self.artefacts = json.loads(CONTRACTS.read_text())["contracts"]

    def deploy(self, name: str, sender: str, types: Sequence[str] = (),
               args: Sequence[Any] = ()) -> str:
        code = bytes.fromhex(self.artefacts[name]["bytecode"][2:]) + abi_encode(types, args)
        receipt = self.node.send(sender, None, data=code)
        assert receipt["status"] == "0x1", f"deploying {name} failed"
        return str(receipt["contractAddress"])

    @staticmethod
    def calldata(signature: str, types: Sequence[str] = (), args: Sequence[Any] = ()) -> bytes:
        from cointrail.chain.account.address import keccak256

        return keccak256(signature.encode())[:4] + abi_encode(types, args)

    def transact(self, contract: str, sender: str, signature: str, types: Sequence[str] = (),
                 args: Sequence[Any] = (), value: int = 0, gas: int | None = None
                 ) -> dict[str, Any]:
        return self.node.send(sender, contract, value, self.calldata(signature, types, args),
                              gas=gas)

    def token_balance(self, token: str, holder: str, block: str = "latest") -> int:
        data = self.calldata("balanceOf(address)", ["address"], [holder])
        return int(self.node.rpc("eth_call", {"to": token, "data": "0x" + data.hex()}, block),
                   16)
