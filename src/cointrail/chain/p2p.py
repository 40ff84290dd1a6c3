"""Raw blocks from the agency's own node over its peer-to-peer port.

A Bitcoin Core-compatible node sends a block requested with ``getdata`` straight from its
block files when the request asks for the form it stores (the witness block; Litecoin's
witness + MWEB block): no deserializing and re-serializing as ``getblock`` and REST do. On
the 250k-transaction bench chain the node spent 0.08 s of CPU serving every block this way
against 0.55 s over REST, and the blocks are byte for byte the same.

Only what fetching blocks needs: the version handshake, ``getdata``, the ``block`` replies,
``ping``/``pong``. Each message's checksum is verified, and each block must be the one asked
for (its header's hash), in the order asked. A ``ping`` after each request tells when the
node has answered it in full: a block it did not send (not on disk, or no longer on its
chain: Core leaves such requests unanswered) is reported as BlockNotServedError.

Light by design (the standard library only), like `cointrail.chain.fetch`, which runs it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from typing import BinaryIO, NamedTuple, cast

from cointrail import __version__
from cointrail.chain.spec import ChainSpec
from cointrail.chain.utxo.hashes import sha256d
from cointrail.chain.utxo.tx import encode_compact_size
from cointrail.errors import ExternalServiceError, InputError

PROTOCOL_VERSION = 70016  # Bitcoin Core 0.21 / Litecoin Core 0.21 (wtxidrelay)
MSG_BLOCK = 2
MSG_WITNESS_FLAG = 1 << 30
MSG_MWEB_FLAG = 1 << 29  # Litecoin Core 0.21: the block with its MWEB extension
NODE_NETWORK = 1
NODE_WITNESS = 1 << 3
NODE_MWEB = 1 << 24  # Litecoin Core 0.21
#: the largest message accepted: blocks are at most 4 MB of weight (32 MB for Bitcoin Cash)
#: plus Litecoin's MWEB extension
MAX_MESSAGE = 64 << 20
#: the most entries a node takes in one ``getdata`` (Core's MAX_INV_SZ): it ignores a longer
#: one altogether, as if it had none of the blocks
MAX_INV = 50_000
HEADER = struct.Struct("<4s12sI4s")


class PeerAddress(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_peer(text: str, default_host: str) -> PeerAddress:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``PORT`` (on `default_host`, the RPC URL's host)."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 < int(port) < 65536 or not host or "]" in host:
        raise InputError(
            f"--p2p {text!r}: write the node's P2P address as HOST:PORT (e.g. 127.0.0.1:8333) "
            "or just PORT on the RPC URL's host"
        )
    return PeerAddress(host, int(port))


class PeerError(ExternalServiceError):
    """The node's P2P port failed: unreachable, closed the connection, or broke the protocol."""


class BlockNotServedError(PeerError):
    """The node answered a request without sending some of its blocks: it no longer has them
    on its chain (a reorg meanwhile) or on disk (pruned)."""


#: a version message's address field with nothing in it (services 0, ::, port 0)
_NO_ADDR = bytes(26)


def block_inv_type(spec: ChainSpec, services: int) -> int:
    """The ``getdata`` type that asks for a block in the form the node stores it, so that it
    sends it from disk as is (and with all its data: witnesses, MWEB)."""
    if spec.has_mweb and services & NODE_MWEB:
        return MSG_BLOCK | MSG_WITNESS_FLAG | MSG_MWEB_FLAG
    if spec.has_segwit and services & NODE_WITNESS:
        return MSG_BLOCK | MSG_WITNESS_FLAG
    return MSG_BLOCK


class PeerClient:
    """One P2P connection to a node, for fetching blocks (one thread at a time).

    Opens the connection and runs the version handshake on creation. PeerError (an
    ExternalServiceError) says what failed and what to do."""

    def __init__(self, address: PeerAddress, spec: ChainSpec, *, timeout: float = 30.0) -> None:
        self.address, self.spec, self.timeout = address, spec, timeout
        self.magic = spec.p2p_magic
        try:
            self._sock = socket.create_connection(address, timeout=timeout)
        except OSError as exc:
            raise PeerError(
                f"cannot connect to the node's P2P port at {address} ({exc.strerror or exc}): "
                "is the node listening there (-listen=1, -port, -bind)? Or sync without --p2p "
                "(REST or JSON-RPC)"
            ) from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # room for a few blocks on their way while this side is busy: the node pauses
        # sending once its own buffer for this connection is full
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._file = cast(BinaryIO, self._sock.makefile("rb", buffering=1 << 20))
        self._nonce = int.from_bytes(os.urandom(8), "little")
        try:
            self.services, self.user_agent, self.start_height = self._handshake()
        except BaseException:
            self.close()
            raise
        if not self.services & NODE_NETWORK:
            self.close()
            raise PeerError(
                f"the node at {address} ({self.user_agent}) does not serve the whole chain over "
                "P2P (it is pruned); sync without --p2p, or from a node that keeps every block"
            )
        self.inv_type = block_inv_type(spec, self.services)

    # -- framing ----------------------------------------------------------------------------

    def _send(self, command: str, payload: bytes = b"") -> None:
        header = HEADER.pack(self.magic, command.encode("ascii"), len(payload),
                             sha256d(payload)[:4])
        try:
            self._sock.sendall(header + payload)
        except OSError as exc:
            raise self._gone(exc) from exc

    def _gone(self, exc: BaseException | None = None) -> PeerError:
        why = f" ({exc})" if exc is not None else ""
        if isinstance(exc, TimeoutError | socket.timeout):
            return PeerError(
                f"the node at {self.address} sent nothing for {self.timeout:g} s over P2P; "
                "check the node (or raise rpc_timeout)")
        return PeerError(
            f"the node at {self.address} closed the P2P connection{why}: it stopped, or it "
            "refuses to serve more (its -maxuploadtarget?); check the node's log")

    def _read(self, n: int) -> bytes:
        try:
            data = self._file.read(n)
        except OSError as exc:
            raise self._gone(exc) from exc
        if len(data) != n:
            raise self._gone()
        return data

    def receive(self) -> tuple[str, bytes]:
        """The next message from the node (command, payload), its magic and checksum checked."""
        magic, raw_command, size, checksum = HEADER.unpack(self._read(HEADER.size))
        if magic != self.magic:
            raise PeerError(
                f"the node at {self.address} speaks another network's protocol (message start "
                f"{magic.hex()}, {self.spec.key}'s is {self.magic.hex()}): pass the right "
                "--chain/--network, or the P2P port of the right node")
        if size > MAX_MESSAGE:
            raise PeerError(f"the node at {self.address} announced a {size:,}-byte message, "
                            f"more than any block ({MAX_MESSAGE:,}); check the node")
        command = raw_command.rstrip(b"\0").decode("ascii", "replace")
        payload = self._read(size)
        if sha256d(payload)[:4] != checksum:
            raise PeerError(f"a {command!r} message from the node at {self.address} fails its "
                            "checksum (damaged in transit); run the same command again")
        return command, payload

    def _handshake(self) -> tuple[int, str, int]:
        agent = f"/cointrail:{__version__}/".encode()
        version = (struct.pack("<iQq", PROTOCOL_VERSION, 0, int(time.time())) + _NO_ADDR
                   + _NO_ADDR + struct.pack("<Q", self._nonce)
                   + encode_compact_size(len(agent)) + agent
                   + struct.pack("<i?", 0, False))  # start height 0, no transaction relay
        self._send("version", version)
        peer: tuple[int, str, int] | None = None
        acked = False
        while peer is None or not acked:
            command, payload = self.receive()
            if command == "version":
                peer = self._parse_version(payload)
                self._send("verack")
            elif command == "verack":
                acked = True
            elif command == "ping":
                self._send("pong", payload)
        return peer

    def _parse_version(self, payload: bytes) -> tuple[int, str, int]:
        try:
            version, services = struct.unpack_from("<iQ", payload)
            at = 4 + 8 + 8 + 26 + 26 + 8
            length = payload[at]
            at += 1
            if length >= 0xFD:  # a user agent this long is not a node's: refuse below
                raise IndexError
            agent = payload[at:at + length].decode("utf-8", "replace")
            (start_height,) = struct.unpack_from("<i", payload, at + length)
        except (struct.error, IndexError) as exc:
            raise PeerError(f"the node at {self.address} sent a malformed version message; "
                            "is that port a node's P2P port?") from exc
        if version < 70001:
            raise PeerError(f"the node at {self.address} speaks protocol {version}, too old to "
                            "serve blocks this way; sync without --p2p")
        return services, agent, start_height

    # -- blocks -----------------------------------------------------------------------------

    def blocks(self, hashes: Sequence[bytes]) -> Iterator[bytes]:
        """The raw blocks with these hashes (internal byte order), in order as each arrives:
        one ``getdata`` for all of them (per MAX_INV), then a ``ping`` that the node answers
        once it has sent every block it will. BlockNotServedError when some were not sent."""
        if not hashes:
            return
        self._nonce = (self._nonce + 1) & 0xFFFF_FFFF_FFFF_FFFF
        nonce = struct.pack("<Q", self._nonce)
        for first in range(0, len(hashes), MAX_INV):
            part = hashes[first:first + MAX_INV]
            inv = b"".join(struct.pack("<I", self.inv_type) + h for h in part)
            self._send("getdata", encode_compact_size(len(part)) + inv)
        self._send("ping", nonce)
        answered = False
        try:
            yield from self._answers(hashes, nonce)
            answered = True
        finally:
            if not answered:  # blocks still on their way would be taken for the next request's
                self.close()

    def _answers(self, hashes: Sequence[bytes], nonce: bytes) -> Iterator[bytes]:
        for expected in hashes:
            while True:
                command, payload = self.receive()
                if command == "block":
                    break
                if command == "ping":
                    self._send("pong", payload)
                elif (command == "pong" and payload == nonce) or command == "notfound":
                    raise BlockNotServedError(
                        f"the node at {self.address} did not send block "
                        f"{expected[::-1].hex()}: it is no longer on the node's chain, or not "
                        "on its disk (pruned)")
            got = sha256d(payload[:80])
            if got != expected:
                raise PeerError(
                    f"the node at {self.address} sent block {got[::-1].hex()} where "
                    f"{expected[::-1].hex()} was asked for; check the node")
            yield payload
        while True:  # the pong closes this request: the next starts clean
            command, payload = self.receive()
            if command == "ping":
                self._send("pong", payload)
            elif command == "pong" and payload == nonce:
                return

    def close(self) -> None:
        """Close the connection; from another thread, this ends a read that is waiting."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._file.close()
        self._sock.close()


__all__ = ["BlockNotServedError", "PeerAddress", "PeerClient", "PeerError", "block_inv_type",
           "parse_peer"]
