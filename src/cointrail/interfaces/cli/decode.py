"""``cointrail decode``: blocks and transactions as Bitcoin Core-compatible JSON."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cointrail.chain.spec import ChainSpec
from cointrail.chain.utxo.blkfile import TruncatedFrame, iter_blk_frames
from cointrail.chain.utxo.block import Block, decode_block
from cointrail.chain.utxo.corejson import (
    amount_to_decimal,
    block_to_core_json,
    dumps,
    tx_to_core_json,
)
from cointrail.chain.utxo.tx import Transaction, decode_tx
from cointrail.errors import DecodeError, InputError
from cointrail.interfaces.cli.common import (
    STDIN,
    get_state,
    handle_errors,
    hex_or_raw,
    human_console,
    looks_like_hex,
    path_exists,
    print_json,
    read_source,
    warning_line,
)

decode_app = typer.Typer(
    help="Decode raw blocks and transactions into Bitcoin Core-compatible JSON.",
    no_args_is_help=True,
)

SourceArg = Annotated[
    str, typer.Argument(metavar="FILE|-", help="Block file (raw bytes or hex text), - for stdin.")
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json/--summary",
        help="Core-compatible JSON (getblock <hash> 2), or a human summary.",
    ),
]


# ------------------------------------------------------------------------------------ blocks


_BLOCK_HELP = (
    "Decode a block (a file or stdin; raw bytes or hex) as Bitcoin Core's getblock <hash> 2 "
    "prints it. Fields that need the node's chain state (confirmations, mediantime, chainwork, "
    "nextblockhash, fees) are omitted. cointrail adds value_sat (integer amount) to every "
    "output and cointrail_address (the attributed p2pkh address) to pay-to-pubkey outputs."
)
_TX_HELP = (
    "Decode a transaction (hex, a file, or stdin) as Bitcoin Core's decoderawtransaction "
    "prints it, plus value_sat on every output."
)


@decode_app.command("block", help=_BLOCK_HELP)
def decode_block_cmd(
    ctx: typer.Context,
    source: SourceArg,
    *,
    framed: Annotated[
        bool,
        typer.Option(
            "--framed",
            help="Input is blk*.dat-style frames (magic, u32 length, block); prints an array.",
        ),
    ] = False,
    as_json: JsonOpt = True,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One compact JSON document per block and line.")
    ] = False,
    height: Annotated[
        int | None,
        typer.Option("--height", min=0, help="Height to report for a single block."),
    ] = None,
) -> None:
    """Decode one block, or every block of a framed file, as Core JSON (see _BLOCK_HELP)."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        spec = state.spec
        if framed:
            _decode_framed(source, spec, as_json=as_json, jsonl=jsonl)
            return
        data = hex_or_raw(read_source(source, "block"), "block")
        if data[:4] == spec.magic and len(data) > 8:
            raise InputError(
                f"the input starts with the {spec.magic.hex()} blk-file magic of {spec.key}: "
                "it is a framed block file; pass --framed"
            )
        block = decode_block(data, spec)
        if height is None and not any(block.header.prev_hash):
            height = 0
        if not as_json:
            _print_block_summaries([(height, block)], spec)
        else:
            document = block_to_core_json(block, spec, height)
            print_json(dumps(document, indent=None if jsonl else 2))


def _frames(source: str, spec: ChainSpec, truncations: list[TruncatedFrame]) -> Iterator[Block]:
    """Decoded blocks of a framed file (or of framed stdin, spooled to a temporary file)."""
    if source == STDIN:
        with tempfile.TemporaryDirectory(prefix="cointrail-") as tmp:
            spool = Path(tmp) / "stdin.blk"
            spool.write_bytes(sys.stdin.buffer.read())
            yield from _frames_of(spool, spec, truncations, xor_key=b"")
        return
    path = Path(source)
    if not path_exists(source):
        raise InputError(f"block file {source!r} does not exist; check the path")
    yield from _frames_of(path, spec, truncations, xor_key=None)


def _frames_of(
    path: Path, spec: ChainSpec, truncations: list[TruncatedFrame], xor_key: bytes | None
) -> Iterator[Block]:
    for frame in iter_blk_frames(path, {spec.magic}, xor_key, truncations=truncations):
        try:
            yield decode_block(frame.raw, spec)
        except DecodeError as exc:
            raise DecodeError(
                f"{frame.file}: block of the frame at offset {frame.offset}: {exc.reason}",
                frame.data_offset + exc.offset,
            ) from exc


def _with_heights(blocks: Iterator[Block]) -> Iterator[tuple[int | None, Block]]:
    """Pair blocks with their height where it follows from a parent seen before (or genesis)."""
    heights: dict[bytes, int] = {}
    for block in blocks:
        prev = bytes(block.header.prev_hash)
        parent = heights.get(prev)
        height = 0 if not any(prev) else None if parent is None else parent + 1
        if height is not None:
            heights[bytes(block.hash)] = height
        yield height, block


def _decode_framed(source: str, spec: ChainSpec, *, as_json: bool, jsonl: bool) -> None:
    truncations: list[TruncatedFrame] = []
    blocks = _with_heights(_frames(source, spec, truncations))
    if not as_json:
        _print_block_summaries(list(blocks), spec)
    elif jsonl:
        for height, block in blocks:
            print_json(dumps(block_to_core_json(block, spec, height), indent=None))
    else:
        # stream the array: one block in memory at a time
        first = True
        for height, block in blocks:
            text = dumps(block_to_core_json(block, spec, height))
            print_json(("[\n" if first else ",\n") + _indent(text), nl=False)
            first = False
        print_json("[]" if first else "\n]")
    for trunc in truncations:
        warning_line(str(trunc))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _coins(value: int, spec: ChainSpec) -> str:
    return f"{amount_to_decimal(value, spec.decimals)} {spec.ticker}"


def _print_block_summaries(rows: list[tuple[int | None, Block]], spec: ChainSpec) -> None:
    table = Table(title=f"{len(rows)} {spec.key} block(s)")
    for column in ("height", "hash", "time (UTC)", "txs", "size", "weight", "outputs", "merkle"):
        table.add_column(column, justify="right" if column in ("height", "txs") else "left")
    for height, block in rows:
        total = sum(tx.output_value for tx in block.transactions)
        table.add_row(
            "?" if height is None else str(height),
            str(block.hash),
            _utc(block.header.time),
            str(len(block.transactions)),
            str(block.size),
            str(block.weight),
            _coins(total, spec),
            "ok" if block.merkle_root_valid else "MISMATCH",
        )
    human_console().print(table)


# ------------------------------------------------------------------------------ transactions


@decode_app.command("tx", help=_TX_HELP)
def decode_tx_cmd(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="HEX|FILE|-", help="Transaction hex, a file (raw or hex), or - for stdin."
        ),
    ],
    *,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json/--summary", help="Core-compatible JSON (decoderawtransaction), or a summary."
        ),
    ] = True,
) -> None:
    """Decode one transaction as Core JSON (see _TX_HELP)."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        spec = state.spec
        if source != STDIN and not path_exists(source):
            if not looks_like_hex(source.encode()):
                raise InputError(
                    f"{source[:80]!r} is neither transaction hex nor an existing file"
                )
            data = hex_or_raw(source.encode(), "transaction")
        else:
            data = hex_or_raw(read_source(source, "transaction"), "transaction")
        tx = decode_tx(data, spec)
        if as_json:
            print_json(dumps(tx_to_core_json(tx, spec, include_hex=False)))
        else:
            _print_tx_summary(tx, spec)


def _print_tx_summary(tx: Transaction, spec: ChainSpec) -> None:
    console = human_console()
    kind = "coinbase" if tx.is_coinbase else f"{len(tx.inputs)} input(s)"
    console.print(f"[bold]{tx.txid}[/bold]  {spec.key}")
    console.print(
        f"{kind}, {len(tx.outputs)} output(s), size {tx.size}, vsize {tx.vsize}, "
        f"weight {tx.weight}, total out {_coins(tx.output_value, spec)}"
    )
    table = Table()
    for column in ("n", "value", "type", "address"):
        table.add_column(column, justify="right" if column == "n" else "left")
    for out in tx.outputs:
        table.add_row(str(out.n), _coins(out.value, spec), out.script_type.value, out.address or "")
    console.print(table)
