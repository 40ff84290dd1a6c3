"""A Litecoin regtest chain of many transactions for benchmarks, built once and cached.

    python bench/regtest_chain.py [--txs 60000] [--per-block 2000] [--seed 1] [--rebuild]

`build_chain` starts ``litecoind -regtest`` (the test harness `tests.support.litecoind`), mines
coinbases, fans ten of them out into 500 coins each, then grows the chain round by round: every
round spends up to ``per_block`` confirmed coins with raw transactions (``createrawtransaction``
+ ``signrawtransactionwithkey`` + ``sendrawtransaction``, in JSON-RPC batches of 100) and
mines one block. ``sendtoaddress`` is not used (it slows to a few transactions per second once
a wallet holds thousands of coins), and neither is a wallet at all: a legacy wallet makes
addresses at under 200 per second here. Keys come from a BIP 32 master key made from the seed,
on hardened paths, so this script derives every private key with HMAC-SHA512 alone (no
elliptic-curve code) while the node derives the addresses (``deriveaddresses``) and signs.

Realism: outputs pay legacy (p2pkh, 40 %), p2sh-segwit (p2sh-p2wpkh, 25 %) and bech32 (p2wpkh,
35 %) addresses, fresh about half of the time and otherwise an address already paid (about 1.1
new addresses per transaction, as on Bitcoin's main chain); transaction shapes mix 1-in-2-out
payments, 2-in-2-out, consolidations (3 and 5 inputs), 1-in-1-out sweeps and 1-in-10-out
payout batches. Each block's coinbase pays a fresh address.

The chain stays below height 431, where Litecoin regtest activates MWEB (which needs a peg-in
first): it has about 120 + txs / per_block blocks.

The finished data directory is cached under ``/tmp/cointrail-bench-chains/<key>`` (never in the
repository), keyed by the parameters and the builder's version, with ``bench-chain.json``
describing it; later runs reuse it. The node is stopped when building ends, so the blk files
are complete.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.litecoind import LitecoindNode  # noqa: E402

BUILDER_VERSION = 2
CACHE_ROOT = Path("/tmp/cointrail-bench-chains")
INFO_FILE = "bench-chain.json"
COIN = 100_000_000
RPC_BATCH = 100
MWEB_HEIGHT = 431  # Litecoin regtest activates MWEB at 432; stay below
FEE_RATE = 20  # sat per (over-estimated) vbyte
MIN_OUTPUT = 100_000  # sat; far above dust
FRESH_ADDRESS_SHARE = 0.5  # the rest of the outputs reuse an address already paid
ADDRESS_TYPES = (  # (name, descriptor template, share); %d is the BIP 32 branch
    ("legacy", "pkh({}/%dh/*h)", 0.40),
    ("p2sh-segwit", "sh(wpkh({}/%dh/*h))", 0.25),
    ("bech32", "wpkh({}/%dh/*h)", 0.35),
)
# (inputs, outputs, weight)
SHAPES = ((1, 2, 55), (2, 2, 15), (3, 1, 8), (1, 1, 10), (5, 2, 5), (1, 10, 7))
FANOUT_COINBASES, FANOUT_OUTPUTS = 10, 500
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TPRV = bytes.fromhex("04358394")  # testnet/regtest extended private key prefix
WIF_PREFIX = b"\xef"  # testnet/regtest secret key prefix
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass
class ChainInfo:
    datadir: str
    height: int
    txs: int  # every transaction of the chain, coinbases included
    non_coinbase_txs: int
    inputs: int
    outputs: int
    addresses_made: int
    build_seconds: float
    build_tx_per_second: float  # raw-transaction phase only
    params: dict[str, Any]
    litecoind: str

    @property
    def blocks_dir(self) -> Path:
        return Path(self.datadir) / "regtest" / "blocks"


def cache_key(txs: int, per_block: int, seed: int) -> str:
    return f"ltc-regtest-t{txs}-b{per_block}-s{seed}-v{BUILDER_VERSION}"


def litecoind_version() -> str:
    try:
        out = subprocess.run(["litecoind", "-version"], check=False, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


def load_cached(txs: int, per_block: int, seed: int) -> ChainInfo | None:
    path = CACHE_ROOT / cache_key(txs, per_block, seed) / INFO_FILE
    if not path.is_file():
        return None
    return ChainInfo(**json.loads(path.read_text()))


def _sat_to_str(sat: int) -> str:
    return str(Decimal(sat) / COIN)


def _b58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n, text = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        text = _B58[r] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def _hardened_child(key: int, chain: bytes, index: int) -> tuple[int, bytes]:
    """BIP 32 private derivation of child ``index'``: needs no elliptic-curve arithmetic."""
    data = b"\0" + key.to_bytes(32, "big") + (index | 0x80000000).to_bytes(4, "big")
    digest = hmac.new(chain, data, hashlib.sha512).digest()
    return (int.from_bytes(digest[:32], "big") + key) % SECP256K1_N, digest[32:]


class _Keys:
    """Addresses of mixed types with their private keys (WIF), from one seed.

    Branch b of the master key serves address type b; the node turns the descriptors into
    addresses and this class derives the matching private keys for signing.
    """

    def __init__(self, node: LitecoindNode, rng: random.Random, seed: int) -> None:
        self.node = node
        self.rng = rng
        digest = hmac.new(b"Bitcoin seed", f"cointrail bench {seed}".encode(),
                          hashlib.sha512).digest()
        self.master = int.from_bytes(digest[:32], "big"), digest[32:]
        xprv = _b58check(TPRV + bytes(9) + self.master[1] + b"\0"
                         + self.master[0].to_bytes(32, "big"))
        self.descriptors: list[str] = []
        self.branches: list[tuple[int, bytes]] = []
        for branch, (_, template, _) in enumerate(ADDRESS_TYPES):
            desc = (template % branch).format(xprv)
            self.descriptors.append(desc + "#" + node.rpc("getdescriptorinfo", desc)["checksum"])
            self.branches.append(_hardened_child(*self.master, branch))
        self.next_index = [0] * len(ADDRESS_TYPES)
        self.fresh: list[list[str]] = [[] for _ in ADDRESS_TYPES]
        self.wif: dict[str, str] = {}
        self.used: list[str] = []
        self.made = 0

    def _refill(self, branch: int, n: int = 1000) -> None:
        first = self.next_index[branch]
        addresses = self.node.rpc("deriveaddresses", self.descriptors[branch],
                                  [first, first + n - 1])
        key, chain = self.branches[branch]
        for i, address in enumerate(addresses):
            child = _hardened_child(key, chain, first + i)[0]
            self.wif[address] = _b58check(WIF_PREFIX + child.to_bytes(32, "big") + b"\1")
        self.fresh[branch] = addresses[::-1]
        self.next_index[branch] = first + n

    def new(self) -> str:
        branch = self.rng.choices(range(len(ADDRESS_TYPES)), [w for *_, w in ADDRESS_TYPES])[0]
        if not self.fresh[branch]:
            self._refill(branch)
        address = self.fresh[branch].pop()
        self.used.append(address)
        self.made += 1
        return address

    def take(self, k: int) -> list[str]:
        """k distinct addresses (createrawtransaction takes a map address -> amount)."""
        chosen: list[str] = []
        while len(chosen) < k:
            if self.used and self.rng.random() > FRESH_ADDRESS_SHARE:
                address = self.rng.choice(self.used)
                if address in chosen:
                    continue
            else:
                address = self.new()
            chosen.append(address)
        return chosen


def _log(message: str) -> None:
    print(f"[chain] {message}", file=sys.stderr, flush=True)


def build_chain(
    txs: int = 60_000, per_block: int = 2_000, seed: int = 1, *, rebuild: bool = False
) -> ChainInfo:
    """The cached chain for these parameters, building it first if needed."""
    key = cache_key(txs, per_block, seed)
    final = CACHE_ROOT / key
    if not rebuild:
        cached = load_cached(txs, per_block, seed)
        if cached is not None:
            return cached
    partial = CACHE_ROOT / (key + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    partial.mkdir(parents=True)
    rng = random.Random(seed)
    started = time.perf_counter()
    node = LitecoindNode(datadir=partial, extra_args=["-disablewallet", "-maxmempool=1000"])
    node.start()
    try:
        info = _build(node, rng, seed, txs, per_block, started)
    finally:
        node.stop()
    info.datadir = str(final)
    info.params = {"txs": txs, "per_block": per_block, "seed": seed,
                   "builder_version": BUILDER_VERSION}
    (partial / INFO_FILE).write_text(json.dumps(asdict(info), indent=2))
    partial.rename(final)
    return info


def _build(node: LitecoindNode, rng: random.Random, seed: int, target: int, per_block: int,
           started: float) -> ChainInfo:
    keys = _Keys(node, rng, seed)
    coinbases = [keys.new() for _ in range(100 + FANOUT_COINBASES)]
    for address in coinbases:
        node.mine(1, address)
    # fan out: each of the first coinbases (50 LTC) into FANOUT_OUTPUTS coins
    blocks = node.batch(("getblock", [h, 2]) for h in node.best_chain()[1 : 1 + FANOUT_COINBASES])
    fan: list[tuple[dict[str, Any], str, list[int]]] = []
    for block, address in zip(blocks, coinbases, strict=False):
        coinbase = block["tx"][0]
        total = int(Decimal(coinbase["vout"][0]["value"]) * COIN)
        spendable = total - _fee(1, FANOUT_OUTPUTS)
        amounts = [spendable // FANOUT_OUTPUTS] * FANOUT_OUTPUTS
        fan.append(({"txid": coinbase["txid"], "vout": 0}, address, amounts))
    pool: list[tuple[str, int, int, str]] = []  # confirmed coins: (txid, vout, sat, address)
    for outpoint, address, amounts in fan:
        outs = keys.take(len(amounts))
        raw = node.rpc("createrawtransaction", [outpoint],
                       {a: _sat_to_str(v) for a, v in zip(outs, amounts, strict=True)})
        signed = node.rpc("signrawtransactionwithkey", raw, [keys.wif[address]])
        if not signed.get("complete"):
            raise RuntimeError(f"signing failed: {signed.get('errors')}")
        txid = node.rpc("sendrawtransaction", signed["hex"])
        pool.extend((txid, n, v, a) for n, (a, v) in enumerate(zip(outs, amounts, strict=True)))
    node.mine(1, keys.new())
    shapes = [(i, o) for i, o, _ in SHAPES]
    weights = [w for _, _, w in SHAPES]
    made = n_inputs = n_outputs = 0
    raw_started = time.perf_counter()
    height = int(node.rpc("getblockcount"))
    chain_txs = height + 1 + FANOUT_COINBASES  # every tx so far: coinbases + fan-outs
    while chain_txs < target:
        if height + 1 >= MWEB_HEIGHT:
            raise RuntimeError(
                f"the chain would reach height {MWEB_HEIGHT} (MWEB activation) before "
                f"{target} transactions; raise --per-block"
            )
        rng.shuffle(pool)
        round_txs = min(per_block, target - chain_txs - 1)
        planned: list[tuple[list[tuple[str, int, int, str]], list[str], list[int]]] = []
        while len(planned) < round_txs and pool:
            n_in, n_out = rng.choices(shapes, weights)[0]
            inputs = [pool.pop() for _ in range(min(n_in, len(pool)))]
            total = sum(coin[2] for coin in inputs)
            while n_out > 1 and (total - _fee(len(inputs), n_out)) // n_out < MIN_OUTPUT:
                n_out -= 1
            spendable = total - _fee(len(inputs), n_out)
            if spendable < MIN_OUTPUT:  # too small to pay anything: leave it unspent
                continue
            cuts = sorted(rng.randint(1, spendable - 1) for _ in range(n_out - 1))
            amounts = [b - a for a, b in zip([0, *cuts], [*cuts, spendable], strict=True)]
            if min(amounts) < MIN_OUTPUT // 10:  # re-split evenly rather than make dust
                amounts = [spendable // n_out] * n_out
                amounts[0] += spendable - sum(amounts)
            planned.append((inputs, keys.take(n_out), amounts))
        if not planned:
            raise RuntimeError("no coins left to spend")
        new_coins: list[tuple[str, int, int, str]] = []
        for start in range(0, len(planned), RPC_BATCH):
            chunk = planned[start : start + RPC_BATCH]
            raws = node.batch(
                ("createrawtransaction", [
                    [{"txid": c[0], "vout": c[1]} for c in ins],
                    {a: _sat_to_str(v) for a, v in zip(outs, amounts, strict=True)},
                ])
                for ins, outs, amounts in chunk
            )
            signed = node.batch(
                ("signrawtransactionwithkey", [raw, sorted({keys.wif[c[3]] for c in ins})])
                for raw, (ins, _, _) in zip(raws, chunk, strict=True)
            )
            for s in signed:
                if not s.get("complete"):
                    raise RuntimeError(f"signing failed: {s.get('errors')}")
            txids = node.batch(("sendrawtransaction", [s["hex"]]) for s in signed)
            for txid, (ins, outs, amounts) in zip(txids, chunk, strict=True):
                # createrawtransaction keeps the order of the outputs map
                new_coins.extend(
                    (txid, n, v, a) for n, (a, v) in enumerate(zip(outs, amounts, strict=True))
                )
                n_inputs += len(ins)
                n_outputs += len(outs)
        made += len(planned)
        node.mine(1, keys.new())
        height += 1
        left = int(node.rpc("getmempoolinfo")["size"])
        if left:
            raise RuntimeError(f"{left} transactions did not fit in block {height}")
        chain_txs += len(planned) + 1
        pool.extend(new_coins)
        rate = made / (time.perf_counter() - raw_started)
        _log(f"height {height}: {chain_txs} txs in the chain ({rate:,.0f} tx/s), "
             f"{len(pool)} coins")
    raw_seconds = time.perf_counter() - raw_started
    total_txs = sum(
        int(b["nTx"]) for b in node.batch(
            ("getblockheader", [h]) for h in node.best_chain()
        )
    )
    return ChainInfo(
        datadir="", height=height, txs=total_txs, non_coinbase_txs=total_txs - height - 1,
        inputs=n_inputs, outputs=n_outputs, addresses_made=keys.made,
        build_seconds=time.perf_counter() - started,
        build_tx_per_second=made / raw_seconds if raw_seconds else 0.0, params={},
        litecoind=litecoind_version(),
    )


def _fee(n_in: int, n_out: int) -> int:
    return FEE_RATE * (12 + 150 * n_in + 34 * n_out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=60_000, help="transactions in the chain")
    parser.add_argument("--per-block", type=int, default=2_000, help="transactions per block")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached chain")
    args = parser.parse_args()
    info = build_chain(args.txs, args.per_block, args.seed, rebuild=args.rebuild)
    print(json.dumps(asdict(info), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
