"""``cointrail demo``: what cointrail does, on bundled real data, with no node.

Today it reads the bundled real mainnet blocks 0–438, proves each one (merkle root, proof of
work, prev-hash links) and follows the first bitcoin transfer (block 170). It grows into the
full investigation demo as the store, analysis and case layers land.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.blkfile import iter_blk_frames
from cointrail.chain.utxo.block import Block, check_proof_of_work, decode_block
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path

FIRST_TRANSFER_HEIGHT = 170


def run_demo() -> dict[str, Any]:
    """Decode and verify the bundled chain; return the figures the demo prints."""
    spec = get_chain("bitcoin", "mainnet")
    path = bundled_path(EARLY_MAINNET_BLOCKS)
    started = time.perf_counter()
    blocks: list[Block] = []
    prev = b"\x00" * 32
    for frame in iter_blk_frames(path):
        block = decode_block(frame.raw, spec)
        if block.header.prev_hash != prev:
            raise RuntimeError(f"bundled chain broken at height {len(blocks)}")
        if not (block.merkle_root_valid and check_proof_of_work(block.header, spec)):
            raise RuntimeError(f"bundled block {block.hash} does not verify")
        blocks.append(block)
        prev = block.hash
    elapsed = time.perf_counter() - started
    transfer = blocks[FIRST_TRANSFER_HEIGHT].transactions[1]
    return {
        "chain": spec.key,
        "file": str(path),
        "blocks": len(blocks),
        "transactions": sum(len(b.transactions) for b in blocks),
        "tip_height": len(blocks) - 1,
        "tip_hash": str(blocks[-1].hash),
        "all_merkle_roots_and_pow_verified": True,
        "seconds": round(elapsed, 3),
        "first_transfer": {
            "height": FIRST_TRANSFER_HEIGHT,
            "block_hash": str(blocks[FIRST_TRANSFER_HEIGHT].hash),
            "txid": str(transfer.txid),
            "spends": f"{transfer.inputs[0].prev_txid}:{transfer.inputs[0].prev_vout}",
            "outputs": [
                {"n": o.n, "value_sat": o.value, "address": o.address, "type": o.script_type.value}
                for o in transfer.outputs
            ],
        },
    }


def demo(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Run cointrail on bundled real data: verify Bitcoin's first 439 blocks and follow the
    first bitcoin transfer."""
    result = run_demo()
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    console = Console()
    console.print(
        f"[bold]cointrail demo[/bold] — {result['blocks']} real {result['chain']} blocks, "
        f"{result['transactions']} transactions decoded and verified "
        f"(merkle roots, proof of work, links) in {result['seconds']} s"
    )
    first = result["first_transfer"]
    table = Table(title=f"The first bitcoin transfer: block {first['height']}, tx {first['txid']}")
    table.add_column("output")
    table.add_column("BTC", justify="right")
    table.add_column("address (p2pk attributed to its p2pkh address)")
    for out in first["outputs"]:
        table.add_row(str(out["n"]), f"{out['value_sat'] / 1e8:.8f}", str(out["address"]))
    console.print(table)
    console.print(f"It spends {first['spends']} (Satoshi's block-9 coinbase).")
    console.print(
        "Next: [cyan]cointrail decode block --framed FILE[/cyan] prints Bitcoin Core-compatible "
        "JSON; see README.md and docs/."
    )
