"""A bounds-checked byte reader: every failure is a DecodeError naming the byte offset.

Counts read from the wire are checked against the bytes that remain before anything is
allocated, so a hostile count (e.g. 2**64 inputs) fails at once instead of exhausting memory.
"""

from __future__ import annotations

import struct

from cointrail.errors import DecodeError

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")


class ByteReader:
    """Reads little-endian wire fields from `data`, starting at `pos`."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def fail(self, message: str, at: int | None = None) -> DecodeError:
        return DecodeError(message, self.pos if at is None else at)

    def _need(self, n: int, what: str) -> None:
        if n < 0:
            raise DecodeError(f"{what} has a negative length; the data is corrupt", self.pos)
        if self.end - self.pos < n:
            raise DecodeError(
                f"truncated input: {what} needs {n} bytes but only {self.end - self.pos} remain; "
                "check that the file or hex is complete",
                self.pos,
            )

    def read(self, n: int, what: str = "field") -> bytes:
        self._need(n, what)
        start = self.pos
        self.pos = start + n
        return bytes(self.data[start : self.pos])

    def u8(self, what: str = "byte") -> int:
        self._need(1, what)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self, what: str = "u16") -> int:
        self._need(2, what)
        (value,) = _U16.unpack_from(self.data, self.pos)
        self.pos += 2
        return int(value)

    def u32(self, what: str = "u32") -> int:
        self._need(4, what)
        (value,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def i32(self, what: str = "i32") -> int:
        self._need(4, what)
        (value,) = _I32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def i64(self, what: str = "i64") -> int:
        self._need(8, what)
        (value,) = _I64.unpack_from(self.data, self.pos)
        self.pos += 8
        return int(value)

    def u64(self, what: str = "u64") -> int:
        self._need(8, what)
        (value,) = _U64.unpack_from(self.data, self.pos)
        self.pos += 8
        return int(value)

    def compact_size(self, what: str = "count") -> int:
        """CompactSize unsigned integer ("varint" in Core's wire format), canonical only."""
        start = self.pos
        first = self.u8(what)
        if first < 0xFD:
            return first
        if first == 0xFD:
            value, minimum = self.u16(what), 0xFD
        elif first == 0xFE:
            value, minimum = self.u32(what), 0x10000
        else:
            value, minimum = self.u64(what), 0x100000000
        if value < minimum:
            raise DecodeError(f"non-canonical CompactSize for {what}", start)
        return value

    def count(self, what: str, min_item_size: int) -> int:
        """A CompactSize item count, rejected if the remaining bytes cannot hold that many items."""
        start = self.pos
        n = self.compact_size(what)
        if n * min_item_size > self.end - self.pos:
            raise DecodeError(
                f"{what} count {n} cannot fit in the {self.end - self.pos} bytes that remain; "
                "the data is corrupt or truncated",
                start,
            )
        return n

    def var_bytes(self, what: str = "bytes") -> bytes:
        n = self.count(what, 1)
        return self.read(n, what)
