"""The node client (JSON-RPC and the REST path ``/rest/block/H.bin``), against local HTTP
servers that behave as Bitcoin Core's does and as a failing node does: batches answered in
order, basic auth, keep-alive reuse, a connection the node closed while idle, wrong
credentials, a non-JSON answer, a block the node does not serve, a node that is gone or never
answers."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cointrail.chain.rpc import NodeRpcError, RestUnavailableError, RpcClient
from cointrail.errors import ExternalServiceError

BLOCKS = {f"{n:064x}": os.urandom(1000 + 50_000 * n) for n in range(5)}


class RestNode:
    """Serves BLOCKS over REST; counts the TCP connections it accepted. `close_after_each`:
    drop every connection after its answer without saying so (as a node does with one it
    timed out while idle)."""

    def __init__(self, *, close_after_each: bool = False) -> None:
        node = self
        self.connections = 0
        self.sockets: list[socket.socket] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                node.connections += 1
                node.sockets.append(self.request)
                super().setup()

            def do_GET(self) -> None:
                name = self.path.removeprefix("/rest/block/").removesuffix(".bin")
                body = BLOCKS.get(name)
                if body is None:
                    body, status = f"{name} not found\r\n".encode(), 404
                else:
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if close_after_each:
                    self.close_connection = True

            def do_POST(self) -> None:  # JSON-RPC, as Core answers it
                body = self.rfile.read(int(self.headers["Content-Length"]))
                want = "Basic " + base64.b64encode(b"user:secret").decode()
                if self.headers.get("Authorization") != want:
                    self._answer(401, b"")
                    return
                if self.path != "/":
                    self._answer(404, b"<html>not found</html>")
                    return
                calls = json.loads(body)
                answers = []
                for call in calls if isinstance(calls, list) else [calls]:
                    if call["method"] == "getblockhash":
                        answers.append({"id": call["id"], "error": None,
                                        "result": f"{call['params'][0]:064x}"})
                    else:
                        answers.append({"id": call["id"], "result": None, "error": {
                            "code": -32601, "message": "Method not found"}})
                self._answer(200, json.dumps(answers[::-1]).encode())  # any order

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://user:secret@127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop as a node does: no new connections, and the open ones closed."""
        self.server.shutdown()
        self.server.server_close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def node() -> Iterator[RestNode]:
    served = RestNode()
    yield served
    served.stop()


def test_blocks_come_byte_exact_over_one_kept_alive_connection(node: RestNode) -> None:
    with RpcClient(node.url) as client:
        for _ in range(3):
            for name, raw in BLOCKS.items():
                assert client.rest_block(name) == raw
    assert node.connections == 1


def test_a_connection_the_node_dropped_is_replaced_without_an_error() -> None:
    node = RestNode(close_after_each=True)
    try:
        with RpcClient(node.url) as client:
            for name, raw in BLOCKS.items():
                assert client.rest_block(name) == raw
        assert node.connections == len(BLOCKS)
    finally:
        node.stop()


def test_a_block_the_node_does_not_serve_says_what_to_do(node: RestNode) -> None:
    with RpcClient(node.url) as client, pytest.raises(RestUnavailableError) as caught:
        client.rest_block("ab" * 32)
    message = str(caught.value)
    assert f"did not serve block {'ab' * 32} over REST ({'ab' * 32} not found)" in message
    assert "start it with -rest=1, or sync with --no-rest" in message
    assert "secret" not in message
    with RpcClient(node.url) as client:  # the connection stays usable after a 404
        assert client.rest_block(next(iter(BLOCKS))) == next(iter(BLOCKS.values()))


def test_a_node_that_went_away_is_an_external_service_error(node: RestNode) -> None:
    with RpcClient(node.url) as client:
        name, raw = next(iter(BLOCKS.items()))
        assert client.rest_block(name) == raw
        node.stop()
        with pytest.raises(ExternalServiceError) as caught:
            client.rest_block(name)
    message = str(caught.value)
    port = node.server.server_address[1]
    assert f"cannot reach the node at http://127.0.0.1:{port}/" in message
    assert "check that it is running" in message and "secret" not in message


def test_a_node_that_never_answers_times_out_with_a_clear_error() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections (the kernel's backlog), never answers
    try:
        port = silent.getsockname()[1]
        with RpcClient(f"http://127.0.0.1:{port}/", timeout=0.3) as client, \
                pytest.raises(ExternalServiceError, match="did not answer in time"):
            client.rest_block("00" * 32)
    finally:
        silent.close()


def test_a_batch_is_answered_in_call_order_with_basic_auth(node: RestNode) -> None:
    with RpcClient(node.url) as client:
        assert client.batch([("getblockhash", [h]) for h in range(5)]) == list(BLOCKS)
        assert client.call("getblockhash", 3) == f"{3:064x}"
        assert client.rest_block(f"{3:064x}") == BLOCKS[f"{3:064x}"]
    assert node.connections == 1  # JSON-RPC and REST share the kept-alive connection


def test_a_node_error_is_a_node_rpc_error_with_its_code(node: RestNode) -> None:
    with RpcClient(node.url) as client, pytest.raises(NodeRpcError) as caught:
        client.batch([("getblockhash", [0]), ("getbestblockhash", [])])
    assert caught.value.code == -32601 and caught.value.method == "getbestblockhash"
    assert "Method not found" in str(caught.value)


def test_wrong_credentials_are_refused_with_what_to_check(node: RestNode) -> None:
    wrong = node.url.replace("secret", "guess")
    with RpcClient(wrong) as client, pytest.raises(ExternalServiceError) as caught:
        client.call("getblockhash", 0)
    message = str(caught.value)
    assert "refused the credentials (HTTP 401)" in message
    assert "check rpcuser/rpcpassword or the cookie file" in message
    assert "guess" not in message


def test_a_non_json_answer_says_so(node: RestNode) -> None:
    with RpcClient(node.url + "wallet/x") as client, \
            pytest.raises(ExternalServiceError, match=r"sent a non-JSON answer \(HTTP 404\)"):
        client.call("getblockhash", 0)
