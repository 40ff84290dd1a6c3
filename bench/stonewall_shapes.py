"""How often real transactions have a Stonewall's output shape: an upper bound on the Stonewall
detector's matches on mainnet.

    python bench/stonewall_shapes.py [DATA_DIR]   # default ../shared/data/btc/blocks

The detector (`cointrail.analysis.patterns.coinjoin.Stonewall`) needs the inputs' values to check
that they split into the two payments; single real blocks do not carry the values of the outputs
their inputs spend. So this counts, in each bundled real mainnet block, the transactions with at
least two inputs whose *outputs* have the shape the detector asks for: no OP_RETURN, three or
four outputs to distinct addresses, exactly two of one value (at least `min_value`) and the rest
of distinct values. The detector matches at most these (and fewer: the input split rules most
batches out).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from cointrail.analysis.patterns.coinjoin import Stonewall  # noqa: E402
from cointrail.chain.utxo.block import decode_block  # noqa: E402
from cointrail.chain.utxo.script import ScriptType  # noqa: E402
from cointrail.chain.utxo.tx import Transaction  # noqa: E402

BLOCKS = ("mainnet-413567.raw", "mainnet-540107.raw", "mainnet-574200.raw")


def output_shape(tx: Transaction, min_value: int = Stonewall().min_value) -> bool:
    outputs = tx.outputs
    if any(o.script_type is ScriptType.NULLDATA for o in outputs) or len(outputs) not in (3, 4):
        return False
    counts = Counter(o.value for o in outputs)
    equal = [v for v, k in counts.items() if k == 2]
    if len(equal) != 1 or max(counts.values()) != 2 or equal[0] < min_value:
        return False
    addresses = [o.address for o in outputs]
    return None not in addresses and len(set(addresses)) == len(addresses)


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared/data/btc/blocks"
    if not root.is_dir():
        sys.exit(f"no block folder at {root}; pass the folder holding {', '.join(BLOCKS)}")
    print("| block | transactions | with 2+ inputs | Stonewall output shape |")
    print("|---|---:|---:|---:|")
    totals = Counter[str]()
    for name in BLOCKS:
        block = decode_block((root / name).read_bytes())
        txs = [t for t in block.transactions if not t.inputs[0].is_coinbase]
        multi = [t for t in txs if len(t.inputs) >= 2]
        shaped = [t for t in multi if output_shape(t)]
        totals.update(txs=len(txs), multi=len(multi), shaped=len(shaped))
        print(f"| {name} | {len(txs):,} | {len(multi):,} | {len(shaped)} |")
    print(f"| all | {totals['txs']:,} | {totals['multi']:,} | {totals['shaped']} "
          f"({totals['shaped'] / totals['multi']:.1%}) |")


if __name__ == "__main__":
    main()
