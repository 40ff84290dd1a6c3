"""PeerClient (raw blocks over a node's P2P port) against a fake node.

The fake node is a socket server on 127.0.0.1 that speaks the Bitcoin P2P framing (message
start, 12-byte command, length, 4-byte sha256d checksum), written here from the protocol
description, independently of `cointrail.chain.p2p`; each test scripts what it says. Real
mainnet blocks come from the shared data folder (read in place); the other blocks are
synthetic but well formed (a header whose merkle root is its one coinbase transaction's).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import GeneratorType
from typing import Any

import pytest

from cointrail import __version__
from cointrail.chain.fetch import BlockFetcher, fetch_from_genesis
from cointrail.chain.p2p import (
    BlockNotServedError,
    PeerAddress,
    PeerClient,
    PeerError,
    block_inv_type,
    parse_peer,
)
from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.chain.utxo.hashes import sha256d
from cointrail.errors import InputError
from cointrail.store.sync import _until_chain_moves
from tests.support.data import require_shared

LTC = get_chain("litecoin", "mainnet")
BTC = get_chain("bitcoin", "mainnet")
#: service bits, from the protocol (not from the module under test)
NETWORK, WITNESS, NETWORK_LIMITED, MWEB = 1, 1 << 3, 1 << 10, 1 << 24
FULL_NODE = NETWORK | WITNESS
FAST = 5.0  # the client's timeout where the peer answers: a broken test fails, not hangs


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    return b"\xfd" + struct.pack("<H", n) if n <= 0xFFFF else b"\xfe" + struct.pack("<I", n)


def rpc_hex(block_hash: bytes) -> str:
    return block_hash[::-1].hex()


def synthetic_chain(n: int) -> list[bytes]:
    """`n` well-formed blocks, each on the one before: a BIP 34 coinbase, its txid as the
    header's merkle root."""
    blocks: list[bytes] = []
    prev = bytes(32)
    for height in range(n):
        script_sig = b"\x03" + height.to_bytes(3, "little")
        coinbase = (struct.pack("<i", 1) + b"\x01" + bytes(32) + b"\xff" * 4
                    + varint(len(script_sig)) + script_sig + b"\xff" * 4
                    + b"\x01" + struct.pack("<q", 50 * 100_000_000) + b"\x01\x51"
                    + struct.pack("<I", 0))
        header = struct.pack("<i32s32sIII", 1, prev, sha256d(coinbase),
                             1_600_000_000 + 600 * height, 0x207FFFFF, height)
        blocks.append(header + b"\x01" + coinbase)
        prev = sha256d(header)
    return blocks


def hash_of(block: bytes) -> bytes:
    return sha256d(block[:80])


def version_payload(services: int = FULL_NODE, version: int = 70016,
                    agent: bytes = b"/Satoshi:25.0.0/", height: int = 438) -> bytes:
    return (struct.pack("<iQq", version, services, int(time.time())) + bytes(26) + bytes(26)
            + b"fakenode" + varint(len(agent)) + agent + struct.pack("<i?", height, True))


def inv_payload(entries: Sequence[tuple[int, bytes]]) -> bytes:
    return varint(len(entries)) + b"".join(struct.pack("<I", t) + h for t, h in entries)


def parse_inv(payload: bytes) -> list[tuple[int, bytes]]:
    if payload[0] < 0xFD:
        count, at = payload[0], 1
    else:
        assert payload[0] in (0xFD, 0xFE), "an inventory of over 4G entries"
        at = 3 if payload[0] == 0xFD else 5
        count = int.from_bytes(payload[1:at], "little")
        assert count >= 0xFD, "a count written longer than it needs"
    assert len(payload) == at + 36 * count, "getdata: its length does not match its count"
    return [(struct.unpack_from("<I", payload, at + 36 * i)[0],
             payload[at + 4 + 36 * i:at + 36 * (i + 1)]) for i in range(count)]


class Conn:
    """The fake node's end of one connection: framing written from the protocol, every
    message received kept in `received`."""

    def __init__(self, sock: socket.socket, magic: bytes) -> None:
        self.sock, self.magic = sock, magic
        self.received: list[tuple[str, bytes]] = []
        self.sock.settimeout(5)

    def frame(self, command: str, payload: bytes = b"", *, magic: bytes | None = None,
              checksum: bytes | None = None, size: int | None = None) -> bytes:
        return (magic or self.magic) + command.encode().ljust(12, b"\0") \
            + struct.pack("<I", len(payload) if size is None else size) \
            + (checksum or sha256d(payload)[:4]) + payload

    def send(self, command: str, payload: bytes = b"", **frame: Any) -> None:
        self.sock.sendall(self.frame(command, payload, **frame))

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = self.sock.recv(n - len(data))
            if not part:
                raise EOFError("the client closed the connection")
            data += part
        return data

    def recv(self) -> tuple[str, bytes]:
        magic, command, size, checksum = struct.unpack("<4s12sI4s", self._exact(24))
        assert magic == self.magic, f"the client framed a message with {magic.hex()}"
        payload = self._exact(size)
        assert sha256d(payload)[:4] == checksum, "the client's checksum is wrong"
        message = command.rstrip(b"\0").decode(), payload
        self.received.append(message)
        return message

    def expect(self, command: str) -> bytes:
        got, payload = self.recv()
        assert got == command, f"expected {command!r} from the client, got {got!r}"
        return payload

    def handshake(self, services: int = FULL_NODE, *, version: int = 70016,
                  before_verack: Sequence[tuple[str, bytes]] = ()) -> bytes:
        """Core's side of the handshake; returns the client's version message."""
        theirs = self.expect("version")
        self.send("version", version_payload(services, version))
        for command, payload in before_verack:
            self.send(command, payload)
        self.send("verack")
        self.expect("verack")
        return theirs

    def serve(self, blocks: Mapping[bytes, bytes]) -> None:
        """Answer as Core does until the client closes: a getdata with the blocks it has
        (others are left out silently), a ping with its pong."""
        while True:
            try:
                command, payload = self.recv()
            except (EOFError, ConnectionError):
                return
            if command == "getdata":
                for _, block_hash in parse_inv(payload):
                    if block_hash in blocks:
                        self.send("block", blocks[block_hash])
            elif command == "ping":
                self.send("pong", payload)

    def wait_closed(self, timeout: float = 2.0) -> bool:
        """Whether the client closes the connection within `timeout` (what it sends
        meanwhile is kept)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                self.recv()
        except (EOFError, ConnectionError):
            return True
        except TimeoutError:
            return False


class FakePeer:
    """A fake node on 127.0.0.1 (a free port): accepts one connection and runs `script` on
    it in a thread. `finish` waits for the script and raises what it raised."""

    def __init__(self, script: Callable[[Conn], None], magic: bytes) -> None:
        self.script, self.magic = script, magic
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = PeerAddress("127.0.0.1", int(self.listener.getsockname()[1]))
        self.conn: Conn | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(5)
            sock, _ = self.listener.accept()
            self.conn = Conn(sock, self.magic)
            self.script(self.conn)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float = 5.0) -> Conn:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the fake node's script did not end"
        if self.error is not None:
            raise self.error
        assert self.conn is not None
        return self.conn

    def shutdown(self) -> None:
        self.listener.close()
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            self.conn.sock.close()
        self.thread.join(5)


@pytest.fixture
def peer() -> Iterator[Callable[..., FakePeer]]:
    made: list[FakePeer] = []

    def make(script: Callable[[Conn], None], spec: ChainSpec = LTC) -> FakePeer:
        fake = FakePeer(script, spec.p2p_magic)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.shutdown()


def serving(blocks: Sequence[bytes], services: int = FULL_NODE) -> Callable[[Conn], None]:
    by_hash = {hash_of(b): b for b in blocks}

    def script(conn: Conn) -> None:
        conn.handshake(services)
        conn.serve(by_hash)

    return script


# -- addresses, request types, message starts ------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8333", PeerAddress("127.0.0.1", 8333)),
    ("node.example:9333", PeerAddress("node.example", 9333)),
    (" 10.0.0.5:19444 ", PeerAddress("10.0.0.5", 19444)),
    ("19444", PeerAddress("rpc.host", 19444)),  # on the RPC URL's host
    ("[::1]:8333", PeerAddress("::1", 8333)),
    ("[2001:db8::7]:65535", PeerAddress("2001:db8::7", 65535)),
])
def test_parse_peer(text: str, expected: PeerAddress) -> None:
    assert parse_peer(text, "rpc.host") == expected


def test_peer_addresses_print_as_they_are_written() -> None:
    assert str(parse_peer("[::1]:8333", "x")) == "[::1]:8333"
    assert str(parse_peer("9333", "127.0.0.1")) == "127.0.0.1:9333"


@pytest.mark.parametrize("text", [
    "", "   ", "node:", ":8333", "node:p2p", "node:0", "node:65536", "-1", "8333x",
    "[::1]:", "::1]:8333", "node:83 33",
])
def test_parse_peer_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_peer(text, "127.0.0.1")
    message = str(raised.value)
    assert message.startswith(f"--p2p {text.strip()!r}: ")
    assert "as HOST:PORT (e.g. 127.0.0.1:8333) or just PORT on the RPC URL's host" in message


@pytest.mark.parametrize(("spec", "services", "expected"), [
    # MSG_BLOCK 2, MSG_WITNESS_FLAG 1 << 30, Litecoin's MSG_MWEB_FLAG 1 << 29
    (LTC, NETWORK | WITNESS | MWEB, 0x6000_0002),
    (get_chain("litecoin", "regtest"), NETWORK | WITNESS | MWEB, 0x6000_0002),
    (LTC, NETWORK | WITNESS, 0x4000_0002),
    (LTC, NETWORK, 0x0000_0002),
    (BTC, NETWORK | WITNESS, 0x4000_0002),
    (BTC, NETWORK | WITNESS | MWEB, 0x4000_0002),  # no MWEB on Bitcoin, whatever the bit
    (BTC, NETWORK, 0x0000_0002),
    (get_chain("bitcoin-cash", "mainnet"), NETWORK | WITNESS, 0x0000_0002),
    (get_chain("dogecoin", "mainnet"), NETWORK | WITNESS, 0x0000_0002),
])
def test_block_inv_type(spec: ChainSpec, services: int, expected: int) -> None:
    assert block_inv_type(spec, services) == expected


@pytest.mark.parametrize(("chain", "network", "magic"), [
    ("bitcoin-cash", "mainnet", "e3e1f3e8"),  # netMagic, not the blk files' f9beb4d9
    ("bitcoin-cash", "testnet", "f4e5f3f4"),
    ("bitcoin-cash", "regtest", "dab5bffa"),
    ("bitcoin", "mainnet", "f9beb4d9"),
    ("bitcoin", "regtest", "fabfb5da"),
    ("litecoin", "mainnet", "fbc0b6db"),
    ("litecoin", "regtest", "fabfb5da"),
    ("dogecoin", "mainnet", "c0c0c0c0"),
])
def test_p2p_message_start(chain: str, network: str, magic: str,
                           peer: Callable[..., FakePeer]) -> None:
    spec = get_chain(chain, network)
    assert spec.p2p_magic.hex() == magic
    assert (spec.p2p_magic != spec.magic) is (chain == "bitcoin-cash")
    # and it is what goes on the wire (the fake node checks each message's start)
    fake = peer(lambda conn: conn.handshake(), spec)
    PeerClient(fake.address, spec, timeout=FAST).close()
    conn = fake.finish()
    assert [c for c, _ in conn.received] == ["version", "verack"]


# -- the handshake and blocks ----------------------------------------------------------------

def test_handshake_then_real_blocks_in_order_with_pings_answered(
        peer: Callable[..., FakePeer]) -> None:
    """Real mainnet blocks (the first 12, and a 2.2 MB segwit block), served as Core serves
    them, with a ping from the node during the transfer, other messages in between, and a
    stale pong; then a second request on the same connection."""
    frames = require_shared("btc/blocks/mainnet-000000-000438.blk").read_bytes()
    small: list[bytes] = []
    at = 0
    while len(small) < 12:
        magic, size = struct.unpack_from("<4sI", frames, at)
        assert magic == bytes.fromhex("f9beb4d9")
        small.append(frames[at + 8:at + 8 + size])
        at += 8 + size
    assert rpc_hex(hash_of(small[0])) == (
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
    big = require_shared("btc/blocks/mainnet-540107.raw").read_bytes()
    first = [*small[:5], big, *small[5:]]
    second = small[:3][::-1]  # the node sends what is asked, in the order asked
    node_ping = b"node-pin"

    def script(conn: Conn) -> None:
        conn.handshake(before_verack=[("ping", b"hs-nonce"), ("sendaddrv2", b"")])
        assert conn.expect("pong") == b"hs-nonce"
        conn.send("sendcmpct", b"\x00" + struct.pack("<Q", 2))
        conn.send("feefilter", struct.pack("<q", 1000))
        for blocks in (first, second):
            asked = parse_inv(conn.expect("getdata"))
            ping = conn.expect("ping")
            assert asked == [(0x4000_0002, hash_of(b)) for b in blocks]
            conn.send("pong", b"stalepng")  # an answer to another ping: not this request's
            for i, block in enumerate(blocks):
                conn.send("block", block)
                if i == 1:
                    conn.send("ping", node_ping)
                    conn.send("inv", inv_payload([(1, bytes(32))]))
            conn.send("pong", ping)
            assert conn.expect("pong") == node_ping
        assert conn.wait_closed()

    fake = peer(script, BTC)
    client = PeerClient(fake.address, BTC, timeout=FAST)
    try:
        assert (client.services, client.user_agent, client.start_height) == (
            FULL_NODE, "/Satoshi:25.0.0/", 438)
        assert client.inv_type == 0x4000_0002
        got = []
        for raw in client.blocks([hash_of(b) for b in first]):
            got.append(raw)
        assert got == first
        assert list(client.blocks([hash_of(b) for b in second])) == second
    finally:
        client.close()
    conn = fake.finish()
    commands = [c for c, _ in conn.received]
    assert commands == ["version", "verack", "pong",  # the ping during the handshake
                        "getdata", "ping", "pong",  # the ping during the first transfer
                        "getdata", "ping", "pong"]
    pongs = [p for c, p in conn.received if c == "pong"]
    assert pongs == [b"hs-nonce", node_ping, node_ping]
    pings = [p for c, p in conn.received if c == "ping"]
    assert len(pings[0]) == 8 and pings[0] != pings[1]  # a new nonce per request
    version = conn.received[0][1]
    assert struct.unpack_from("<i", version)[0] == 70016
    agent = f"/cointrail:{__version__}/".encode()
    assert version[80:].startswith(varint(len(agent)) + agent)
    assert version[-1] == 0  # no transaction relay


def test_synthetic_blocks_over_litecoin_with_mweb(peer: Callable[..., FakePeer]) -> None:
    """A Litecoin node that serves MWEB is asked for the MWEB block (0x60000002); the
    synthetic blocks hash as the real ones do (sha256d of the header)."""
    blocks = synthetic_chain(6)
    asked: list[list[tuple[int, bytes]]] = []

    def script(conn: Conn) -> None:
        conn.handshake(NETWORK | WITNESS | MWEB)
        asked.append(parse_inv(conn.expect("getdata")))
        ping = conn.expect("ping")
        for block in blocks:
            conn.send("block", block)
        conn.send("pong", ping)
        conn.wait_closed()

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    try:
        assert list(client.blocks([hash_of(b) for b in blocks])) == blocks
        assert list(client.blocks([])) == []  # nothing asked: nothing sent
    finally:
        client.close()
    fake.finish()
    assert asked == [[(0x6000_0002, hash_of(b)) for b in blocks]]


def test_more_blocks_than_one_getdata_takes_go_in_several(peer: Callable[..., FakePeer]) -> None:
    """Core ignores a ``getdata`` of more than 50,000 entries altogether (MAX_INV_SZ): a
    longer request goes in several, with one ping after the last."""
    blocks = synthetic_chain(3)
    hashes = [hash_of(blocks[i % 3]) for i in range(50_001 + 300)]
    requests: list[int] = []

    def script(conn: Conn) -> None:
        conn.handshake()
        while True:
            command, payload = conn.recv()
            if command == "ping":
                conn.send("pong", payload)
                break
            assert command == "getdata"
            asked = parse_inv(payload)
            assert len(asked) <= 50_000, "Core would ignore this request"
            requests.append(len(asked))
            by_hash = {hash_of(b): conn.frame("block", b) for b in blocks}
            conn.sock.sendall(b"".join(by_hash[h] for _, h in asked))
        conn.wait_closed()

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    try:
        got = list(client.blocks(hashes))
    finally:
        client.close()
    fake.finish()
    assert requests == [50_000, 301]
    assert got == [blocks[i % 3] for i in range(len(hashes))]


# -- what goes wrong -------------------------------------------------------------------------

def test_another_networks_message_start_is_refused(peer: Callable[..., FakePeer]) -> None:
    def script(conn: Conn) -> None:
        conn.expect("version")
        conn.send("version", version_payload(), magic=BTC.p2p_magic)  # a Bitcoin node
        assert conn.wait_closed()

    fake = peer(script)
    with pytest.raises(PeerError) as raised:
        PeerClient(fake.address, LTC, timeout=FAST)
    message = str(raised.value)
    assert "message start f9beb4d9" in message
    assert "litecoin/mainnet's is fbc0b6db" in message
    assert str(fake.address) in message and "--chain/--network" in message
    fake.finish()  # and the client closed its side


def _one_request(conn: Conn, services: int = FULL_NODE) -> tuple[list[bytes], bytes]:
    """The handshake and the client's next request: the hashes asked for, the ping nonce."""
    conn.handshake(services)
    hashes = [h for _, h in parse_inv(conn.expect("getdata"))]
    return hashes, conn.expect("ping")


def test_a_block_failing_its_checksum_is_refused(peer: Callable[..., FakePeer]) -> None:
    blocks = synthetic_chain(3)

    def script(conn: Conn) -> None:
        _, ping = _one_request(conn)
        conn.send("block", blocks[0])
        conn.send("block", blocks[1], checksum=b"\x00\x01\x02\x03")
        conn.send("block", blocks[2])
        conn.send("pong", ping)
        assert conn.wait_closed()

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    got = []
    with pytest.raises(PeerError, match=r"a 'block' message from the node at .* fails its "
                                        "checksum"):
        for raw in client.blocks([hash_of(b) for b in blocks]):
            got.append(raw)
    assert got == blocks[:1]
    fake.finish()  # the connection was closed: what was still coming is not trusted


def test_another_block_than_the_one_asked_for_is_refused(peer: Callable[..., FakePeer]) -> None:
    blocks = synthetic_chain(3)

    def script(conn: Conn) -> None:
        _, ping = _one_request(conn)
        conn.send("block", blocks[0])
        conn.send("block", blocks[2])  # block 1 skipped
        conn.send("pong", ping)
        conn.wait_closed()

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    got = []
    with pytest.raises(PeerError) as raised:
        for raw in client.blocks([hash_of(b) for b in blocks]):
            got.append(raw)
    assert got == blocks[:1]
    assert not isinstance(raised.value, BlockNotServedError)
    assert (f"sent block {rpc_hex(hash_of(blocks[2]))} where {rpc_hex(hash_of(blocks[1]))} "
            "was asked for") in str(raised.value)
    fake.finish()


def test_a_request_answered_without_its_block_is_block_not_served(
        peer: Callable[..., FakePeer]) -> None:
    """Core leaves a request for a block off its chain unanswered: the pong to the ping
    after the request tells."""
    blocks = synthetic_chain(3)
    fake = peer(serving(blocks[:2]))  # the node lacks block 2
    client = PeerClient(fake.address, LTC, timeout=FAST)
    got = []
    with pytest.raises(BlockNotServedError) as raised:
        for raw in client.blocks([hash_of(b) for b in blocks]):
            got.append(raw)
    assert got == blocks[:2]
    assert f"did not send block {rpc_hex(hash_of(blocks[2]))}" in str(raised.value)


def test_notfound_is_block_not_served(peer: Callable[..., FakePeer]) -> None:
    blocks = synthetic_chain(2)

    def script(conn: Conn) -> None:
        hashes, _ = _one_request(conn)
        conn.send("block", blocks[0])
        conn.send("notfound", inv_payload([(0x4000_0002, hashes[1])]))
        conn.wait_closed()  # no pong: the notfound is enough

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    blocks_iter = client.blocks([hash_of(b) for b in blocks])
    assert next(blocks_iter) == blocks[0]
    started = time.monotonic()
    with pytest.raises(BlockNotServedError, match=rpc_hex(hash_of(blocks[1]))):
        next(blocks_iter)
    assert time.monotonic() - started < 2  # not the timeout
    fake.finish()


def test_the_node_closing_the_connection_mid_block(peer: Callable[..., FakePeer]) -> None:
    block = synthetic_chain(1)[0]

    def script(conn: Conn) -> None:
        _one_request(conn)
        whole = conn.frame("block", block)
        conn.sock.sendall(whole[:24 + len(block) // 2])
        conn.sock.close()

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    with pytest.raises(PeerError, match=f"the node at {fake.address} closed the P2P "
                                        "connection"):
        list(client.blocks([hash_of(block)]))
    fake.finish()


def test_nothing_listening_says_the_node_needs_listen() -> None:
    with socket.socket() as bound:  # a port that is taken, but nothing listens on it
        bound.bind(("127.0.0.1", 0))
        address = PeerAddress("127.0.0.1", bound.getsockname()[1])
        with pytest.raises(PeerError) as raised:
            PeerClient(address, LTC, timeout=FAST)
    message = str(raised.value)
    assert f"cannot connect to the node's P2P port at {address}" in message
    assert "-listen=1" in message and "without --p2p" in message


def test_a_pruned_node_is_refused(peer: Callable[..., FakePeer]) -> None:
    def script(conn: Conn) -> None:
        conn.handshake(NETWORK_LIMITED | WITNESS)  # a pruned node: recent blocks only
        assert conn.wait_closed()

    fake = peer(script)
    with pytest.raises(PeerError, match=r"\(/Satoshi:25.0.0/\) does not serve the whole chain "
                                        r"over P2P \(it is pruned\)"):
        PeerClient(fake.address, LTC, timeout=FAST)
    fake.finish()


@pytest.mark.parametrize(("version", "match"), [
    (version_payload(version=60002), "speaks protocol 60002, too old"),
    (version_payload()[:90], "sent a malformed version message"),
])
def test_an_unusable_version_is_refused(version: bytes, match: str,
                                        peer: Callable[..., FakePeer]) -> None:
    def script(conn: Conn) -> None:
        conn.expect("version")
        conn.send("version", version)
        conn.send("verack")
        assert conn.wait_closed()

    fake = peer(script)
    with pytest.raises(PeerError, match=match):
        PeerClient(fake.address, LTC, timeout=FAST)
    fake.finish()


def test_a_message_larger_than_any_block_is_refused(peer: Callable[..., FakePeer]) -> None:
    def script(conn: Conn) -> None:
        _one_request(conn)
        conn.sock.sendall(conn.frame("block", b"", size=(64 << 20) + 1))
        conn.wait_closed()

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    with pytest.raises(PeerError, match="announced a 67,108,865-byte message"):
        list(client.blocks([bytes(32)]))
    fake.finish()


@pytest.mark.parametrize("when", ["handshake", "blocks"])
def test_a_silent_node_times_out(when: str, peer: Callable[..., FakePeer]) -> None:
    def script(conn: Conn) -> None:
        if when == "blocks":
            _one_request(conn)
        conn.wait_closed(timeout=3)  # reads, says nothing

    fake = peer(script)
    started = time.monotonic()
    with pytest.raises(PeerError) as raised:
        client = PeerClient(fake.address, LTC, timeout=0.3)
        list(client.blocks([bytes(32)]))
    elapsed = time.monotonic() - started
    assert f"the node at {fake.address} sent nothing for 0.3 s over P2P" in str(raised.value)
    assert 0.25 < elapsed < 2.5
    fake.finish()


def test_abandoning_blocks_halfway_closes_the_connection(peer: Callable[..., FakePeer]) -> None:
    """Blocks still on their way would be taken for the next request's: a request not read
    to its end closes the connection."""
    blocks = synthetic_chain(3)
    closed: list[bool] = []

    def script(conn: Conn) -> None:
        _, ping = _one_request(conn)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # closed meanwhile
            for block in blocks:
                conn.send("block", block)
            conn.send("pong", ping)
        closed.append(conn.wait_closed())

    fake = peer(script)
    client = PeerClient(fake.address, LTC, timeout=FAST)
    blocks_iter = client.blocks([hash_of(b) for b in blocks])
    assert isinstance(blocks_iter, GeneratorType)
    assert next(blocks_iter) == blocks[0]
    blocks_iter.close()
    fake.finish()
    assert closed == [True]
    with pytest.raises(PeerError):  # and it is not used again
        list(client.blocks([hash_of(blocks[0])]))


# -- BlockFetcher over P2P -------------------------------------------------------------------

class FakeRpc:
    """The RpcClient calls a BlockFetcher makes, for a chain of `blocks`; REST is there but
    must not be used when blocks come over P2P."""

    timeout = FAST

    def __init__(self, blocks: Sequence[bytes]) -> None:
        self.hashes = [rpc_hex(hash_of(b)) for b in blocks]
        self.rest_used = False

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        return [self.call(method, *params) for method, params in calls]

    def call(self, method: str, *params: Any) -> Any:
        if method == "getblockhash":
            return self.hashes[int(params[0])]
        if method == "getblockcount":
            return len(self.hashes) - 1
        raise AssertionError(method)

    def rest_block(self, block_hash: str) -> bytes:
        self.rest_used = True
        raise AssertionError("REST asked for while fetching over P2P")


def test_fetcher_hands_over_p2p_blocks_in_order(peer: Callable[..., FakePeer]) -> None:
    blocks = synthetic_chain(23)
    requests: list[int] = []
    by_hash = {hash_of(b): b for b in blocks}

    def script(conn: Conn) -> None:
        conn.handshake()
        while True:
            try:
                command, payload = conn.recv()
            except EOFError:
                return
            if command == "getdata":
                asked = parse_inv(payload)
                requests.append(len(asked))
                for _, block_hash in asked:
                    conn.send("block", by_hash[block_hash])
            elif command == "ping":
                conn.send("pong", payload)

    fake = peer(script)
    rpc = FakeRpc(blocks)
    fetcher = BlockFetcher(rpc, 2, 22, 8, peer=fake.address, spec=LTC)  # type: ignore[arg-type]
    try:
        assert fetcher.source == "p2p" and not fetcher.rest
        assert list(fetcher) == blocks[2:]
    finally:
        fetcher.close()
    fake.finish()
    assert requests == [8, 8, 5]  # one getdata per batch
    assert not rpc.rest_used


def test_fetch_from_genesis_over_p2p(peer: Callable[..., FakePeer]) -> None:
    blocks = synthetic_chain(9)
    fake = peer(serving(blocks))
    rpc = FakeRpc(blocks)
    fetcher = fetch_from_genesis(rpc, 4, peer=fake.address, spec=LTC)  # type: ignore[arg-type]
    assert fetcher is not None
    try:
        assert (fetcher.first, fetcher.last, fetcher.source) == (0, 8, "p2p")
        assert list(fetcher) == blocks
    finally:
        fetcher.close()
    assert not rpc.rest_used  # not even probed


def test_fetcher_needs_the_spec_for_p2p() -> None:
    with pytest.raises(ValueError, match="spec"):
        BlockFetcher(FakeRpc([]), 0, 0, 8, peer=PeerAddress("127.0.0.1", 1))  # type: ignore[arg-type]


def test_a_block_not_served_ends_the_sync_pass_as_the_chain_moving(
        peer: Callable[..., FakePeer]) -> None:
    """The sync takes a block the node did not send as the chain having moved (a reorg
    meanwhile): it keeps the blocks before it and looks at the node's chain again."""
    blocks = synthetic_chain(12)
    fake = peer(serving(blocks[:7]))  # block 7 is no longer on the node's chain
    fetcher = BlockFetcher(FakeRpc(blocks), 0, 11, 5, peer=fake.address,  # type: ignore[arg-type]
                           spec=LTC)
    try:
        assert list(_until_chain_moves(fetcher)) == blocks[:7]
        assert fetcher.chain_moved
    finally:
        fetcher.close()


def test_fetcher_failure_to_connect_is_raised_to_the_consumer() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        address = PeerAddress("127.0.0.1", bound.getsockname()[1])
        fetcher = BlockFetcher(FakeRpc(synthetic_chain(3)), 0, 2, 8,  # type: ignore[arg-type]
                               peer=address, spec=LTC)
        try:
            with pytest.raises(PeerError, match="-listen=1"):
                list(fetcher)
        finally:
            fetcher.close()


@pytest.mark.parametrize("when", ["handshake", "blocks"])
def test_fetcher_close_returns_promptly_while_the_node_is_silent(
        when: str, peer: Callable[..., FakePeer]) -> None:
    """The fetcher's thread waits in a read for the node (up to the RPC timeout): close()
    does not wait that out. Once connected, it ends the read (the thread stops at once);
    still in the handshake, it leaves the thread to stop at its timeout, which drops the
    connection."""
    blocks = synthetic_chain(4)
    asked = threading.Event()
    closed: list[bool] = []

    def script(conn: Conn) -> None:
        if when == "handshake":
            conn.expect("version")
        else:
            _one_request(conn)
        asked.set()
        closed.append(conn.wait_closed(timeout=4))

    fake = peer(script)
    rpc = FakeRpc(blocks)
    rpc.timeout = 1.0
    fetcher = BlockFetcher(rpc, 0, 3, 8, peer=fake.address, spec=LTC)  # type: ignore[arg-type]
    assert asked.wait(3)
    time.sleep(0.05)  # the fetcher's thread is in its read
    started = time.monotonic()
    fetcher.close()
    assert time.monotonic() - started < 0.5
    if when == "blocks":
        assert not fetcher._thread.is_alive()
    fake.finish()
    assert closed == [True]
    fetcher._thread.join(2)
    assert not fetcher._thread.is_alive()
    assert fetcher._queue.empty()  # nothing handed over after the close
