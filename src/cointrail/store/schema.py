"""The store's tables, defined once: DuckDB DDL and Arrow schemas both derive from here.

Conventions (DESIGN.md "Data model"): dense integer ids in chain order (`tx_id`, `addr_id`,
`transfer_id`), 32-byte hashes as BLOB in internal byte order, integer amounts in the smallest
unit. UTXO tables and the account-model tables (`transfers`, `assets`, `account_txs`) live side
by side; both refer to `addresses` and `txs`, so analyses can treat a flow the same way on
either model.

Tables are append-only in chain order: rolling back a reorg is a range delete on ids, and the
spending side of an output is the `inputs` row that names it (view `outputs_spent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa


class ColType(Enum):
    """Logical column types, each with its DuckDB and Arrow spelling."""

    INT8 = ("TINYINT", pa.int8())
    INT16 = ("SMALLINT", pa.int16())
    INT32 = ("INTEGER", pa.int32())
    INT64 = ("BIGINT", pa.int64())
    BOOL = ("BOOLEAN", pa.bool_())
    HASH = ("BLOB", pa.binary())  # 32-byte hash, internal byte order
    BYTES = ("BLOB", pa.binary())
    TEXT = ("VARCHAR", pa.string())
    AMOUNT256 = ("HUGEINT", pa.decimal128(38, 0))  # account-model amounts (wei, token units)

    @property
    def sql(self) -> str:
        return self.value[0]

    @property
    def arrow(self) -> pa.DataType:
        return self.value[1]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColType
    nullable: bool = False
    doc: str = ""
    #: DuckDB's compression for the column ("" lets DuckDB choose per segment). Columns of
    #: random bytes (hashes, address payloads) and address text are stored UNCOMPRESSED:
    #: DuckDB's analysis finds almost nothing to gain there, and costs more than the rest of
    #: the insert (bench/ingest.py's chain: txs + addresses inserted in 0.20 s instead of
    #: 0.32 s, the file 5 % larger, the txids' size unchanged).
    compression: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    doc: str
    model: str = "utxo"  # "utxo", "account" or "common"
    order_by: tuple[str, ...] = ()

    def ddl(self) -> str:
        cols = ",\n  ".join(
            f"{c.name} {c.type.sql}"
            + (f" USING COMPRESSION {c.compression}" if c.compression else "")
            + ("" if c.nullable else " NOT NULL")
            for c in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.type.arrow, nullable=c.nullable) for c in self.columns]
        )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


C = Column
UNCOMPRESSED = "uncompressed"
I8, I16, I32, I64 = ColType.INT8, ColType.INT16, ColType.INT32, ColType.INT64

BLOCKS = Table(
    "blocks",
    (
        C("height", I32, doc="block height"),
        C("hash", ColType.HASH, doc="block hash, internal order", compression=UNCOMPRESSED),
        C("prev_hash", ColType.HASH, compression=UNCOMPRESSED),
        C("merkle_root", ColType.HASH, compression=UNCOMPRESSED),
        C("version", I32),
        C("time", I64, doc="header time, Unix seconds"),
        C("bits", I64),
        C("nonce", I64),
        C("size", I32),
        C("stripped_size", I32),
        C("weight", I32),
        C("tx_count", I32),
        C("first_tx_id", I64, doc="tx_id of the block's first transaction"),
        C("first_addr_id", I64, doc="next addr_id when the block was ingested (rollback mark)"),
    ),
    "One row per block of the best chain.",
    model="common",
    order_by=("height",),
)

TXS = Table(
    "txs",
    (
        C("tx_id", I64, doc="dense id in chain order"),
        C("txid", ColType.HASH, doc="transaction id, internal order", compression=UNCOMPRESSED),
        C("height", I32),
        C("version", I32),
        C("lock_time", I64),
        C("size", I32),
        C("vsize", I32),
        C("is_coinbase", ColType.BOOL),
        C("input_count", I32),
        C("output_count", I32),
        C("input_value", I64, nullable=True, doc="sum of spent outputs; NULL for coinbase"),
        C("output_value", I64),
        C("fee", I64, nullable=True, doc="input_value - output_value; NULL for coinbase"),
    ),
    "One row per transaction (UTXO chains).",
    order_by=("tx_id",),
)

OUTPUTS = Table(
    "outputs",
    (
        C("tx_id", I64),
        C("n", I32, doc="output index (vout)"),
        C("value", I64, doc="satoshi"),
        C("addr_id", I64, nullable=True, doc="attributed address; NULL if none (ADR 0002)"),
        C("script_type", I8, doc="code of cointrail.chain.utxo.script.ScriptType"),
        C("script", ColType.BYTES, nullable=True, doc="script, only for outputs without address"),
    ),
    "One row per output. Which input spends it: view outputs_spent.",
    order_by=("tx_id", "n"),
)

INPUTS = Table(
    "inputs",
    (
        C("tx_id", I64, doc="spending transaction"),
        C("n", I32, doc="input index (vin)"),
        C("prev_tx_id", I64, doc="transaction of the spent output"),
        C("prev_n", I32, doc="index of the spent output"),
        C("value", I64, doc="value of the spent output"),
        C("addr_id", I64, nullable=True, doc="address of the spent output"),
        C("script_type", I8, doc="ScriptType code of the spent output"),
        C("sequence", I64, doc="nSequence"),
        C("sig_flags", I8, nullable=True,
          doc="signature style: SIG_* flags of chain.utxo.sigstyle (ECDSA, high R, sighash "
              "not ALL, Schnorr, uncompressed key); NULL in rows ingested before schema 3"),
    ),
    "One row per non-coinbase input, resolved to the output it spends.",
    order_by=("tx_id", "n"),
)

COINBASES = Table(
    "coinbases",
    (
        C("tx_id", I64),
        C("script_sig", ColType.BYTES, doc="coinbase data (pool tags, BIP 34 height)"),
    ),
    "The coinbase input's data, for mining-pool attribution.",
    order_by=("tx_id",),
)

ADDRESSES = Table(
    "addresses",
    (
        C("addr_id", I64, doc="dense id in order of first appearance"),
        C("type", I8, doc="ScriptType code of the address form"),
        C("payload", ColType.BYTES, doc="hash160, witness program, or account address bytes",
          compression=UNCOMPRESSED),
        C("text", ColType.TEXT, doc="encoded address as users write it",
          compression=UNCOMPRESSED),
        C("first_tx_id", I64, doc="first transaction that paid it"),
        C("first_height", I32),
    ),
    "One row per address; first seen here, last seen in view address_stats.",
    model="common",
    order_by=("addr_id",),
)

ASSETS = Table(
    "assets",
    (
        C("asset_id", I32, doc="0 = the chain's native coin"),
        C("contract", ColType.BYTES, nullable=True, doc="token contract address; NULL for native"),
        C("symbol", ColType.TEXT, nullable=True),
        C("decimals", I16, nullable=True),
    ),
    "Assets moved by transfers (account model): the native coin and tokens.",
    model="account",
    order_by=("asset_id",),
)

TRANSFERS = Table(
    "transfers",
    (
        C("transfer_id", I64, doc="dense id in chain order"),
        C("tx_id", I64, nullable=True,
          doc="NULL for block-level credits (mining rewards, validator withdrawals)"),
        C("height", I32),
        C("kind", I8, doc="0 native, 1 internal (trace), 2 token (ERC-20 Transfer log), "
                          "3 fee (gas; to_addr_id NULL = burned), 4 reward, 5 withdrawal "
                          "(cointrail.chain.account.transfers.TransferKind)"),
        C("from_addr_id", I64, nullable=True),
        C("to_addr_id", I64, nullable=True),
        C("asset_id", I32),
        C("amount", ColType.AMOUNT256, doc="smallest unit (wei, token units)"),
        C("log_index", I32, nullable=True),
        C("trace_address", ColType.TEXT, nullable=True),
        C("amount_exact", ColType.TEXT, nullable=True,
          doc="decimal text of an amount beyond 38 digits (uint256 token amounts); "
              "amount is then 0"),
    ),
    "Value movements on account chains; failed transactions move no value.",
    model="account",
    order_by=("transfer_id",),
)

ACCOUNT_TXS = Table(
    "account_txs",
    (
        C("tx_id", I64),
        C("tx_index", I32, doc="position in the block (transactionIndex)"),
        C("from_addr_id", I64, doc="sender (from)"),
        C("to_addr_id", I64, nullable=True, doc="recipient (to); NULL: contract creation"),
        C("created_addr_id", I64, nullable=True, doc="contract created (receipt contractAddress)"),
        C("value", ColType.AMOUNT256, doc="wei sent with the call (moved only if status 1)"),
        C("nonce", I64),
        C("gas", I64, doc="gas limit"),
        C("gas_used", I64, doc="receipt gasUsed"),
        C("gas_price", ColType.AMOUNT256, doc="receipt effectiveGasPrice, wei"),
        C("status", I8, doc="1 success, 0 failed, -1 unknown (pre-Byzantium receipt)"),
        C("tx_type", I8, doc="EIP-2718 type: 0 legacy, 1 access list, 2 EIP-1559, 3 blob, 4 "
                             "set-code"),
        C("selector", ColType.BYTES, nullable=True, doc="first 4 bytes of the input"),
    ),
    "Account-model transaction details beside txs (which holds the hash and height).",
    model="account",
    order_by=("tx_id",),
)

TX_LABELS = Table(
    "tx_labels",
    (
        C("tx_id", I64),
        C("height", I32),
        C("label", ColType.TEXT, doc="e.g. coinjoin"),
        C("kind", ColType.TEXT, doc="e.g. wasabi2, whirlpool, joinmarket"),
        C("detector", ColType.TEXT, doc="detector name@version"),
        C("evidence", ColType.TEXT, doc="JSON: what matched"),
    ),
    "Patterns found on transactions (CoinJoins), for clustering, tracing and risk.",
    order_by=("tx_id",),
)

CLUSTER_LINKS = Table(
    "cluster_links",
    (
        C("height", I32),
        C("tx_id", I64, doc="transaction whose evidence links the two addresses"),
        C("addr_a", I64),
        C("addr_b", I64),
        C("heuristic", ColType.TEXT, doc="heuristic name; version in the run's config"),
    ),
    "Applied clustering links in chain order: replaying those up to a height gives the "
    "clustering as of that height.",
    order_by=("tx_id",),
)

CLUSTER_MERGES = Table(
    "cluster_merges",
    (
        C("height", I32),
        C("tx_id", I64),
        C("younger", I64, doc="cluster id merged away (the larger minimum addr_id)"),
        C("older", I64, doc="cluster id kept (the older cluster)"),
        C("heuristic", ColType.TEXT),
    ),
    "Every merge of two clusters: the younger id now lives on as the older.",
    order_by=("tx_id",),
)

CLUSTER_HELD = Table(
    "cluster_held",
    (
        C("height", I32),
        C("tx_id", I64),
        C("addr_a", I64),
        C("addr_b", I64),
        C("heuristic", ColType.TEXT),
        C("cluster_a", I64),
        C("cluster_b", I64),
        C("size_a", I64),
        C("size_b", I64),
    ),
    "Links the supercluster guard held back: a weak link between two large clusters.",
    order_by=("tx_id",),
)

LINK_EVIDENCE = Table(
    "link_evidence",
    (
        C("tx_id", I64),
        C("heuristic", ColType.TEXT),
        C("detail", ColType.TEXT, doc="JSON: e.g. the change output and each heuristic's vote"),
    ),
    "Why a non-multi-input link was made.",
    order_by=("tx_id",),
)

CLUSTER_RUNS = Table(
    "cluster_runs",
    (
        C("run_id", I32),
        C("started_utc", ColType.TEXT),
        C("from_height", I32),
        C("to_height", I32),
        C("block_hash", ColType.HASH, doc="hash of the block at to_height"),
        C("config", ColType.TEXT, doc="JSON: heuristic names, versions and parameters"),
        C("config_hash", ColType.TEXT),
        C("links", I64),
        C("merges", I64),
        C("held", I64),
        C("coinjoins", I64),
        C("seconds", ColType.TEXT),
        C("tool_version", ColType.TEXT),
    ),
    "One row per clustering run: what it rests on and what it did.",
    model="common",
)

SYNC_STATE = Table(
    "sync_state",
    (
        C("key", ColType.TEXT),
        C("value", ColType.TEXT),
    ),
    "Small key/value table: schema version, chain, source, ingest marks.",
    model="common",
)

CLUSTER_TABLES: tuple[Table, ...] = (
    TX_LABELS, CLUSTER_LINKS, CLUSTER_MERGES, CLUSTER_HELD, LINK_EVIDENCE
)
TABLES: tuple[Table, ...] = (
    BLOCKS, TXS, OUTPUTS, INPUTS, COINBASES, ADDRESSES, ASSETS, TRANSFERS, ACCOUNT_TXS,
    *CLUSTER_TABLES, CLUSTER_RUNS, SYNC_STATE,
)
UTXO_TABLES: tuple[Table, ...] = (TXS, OUTPUTS, INPUTS, COINBASES)
SCHEMA_VERSION = 3

#: In-place upgrades: MIGRATIONS[v] takes a store from schema version v to v + 1. Each statement
#: is idempotent, so a migration interrupted by a crash is simply run again.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 -> 2: the account model (Ethereum): block-level transfers without a transaction,
    # uint256 amounts beyond DECIMAL(38), per-transaction details.
    1: (
        "ALTER TABLE transfers ALTER COLUMN tx_id DROP NOT NULL",
        "ALTER TABLE transfers ADD COLUMN IF NOT EXISTS amount_exact VARCHAR",
        # account_txs is created by its CREATE TABLE IF NOT EXISTS
    ),
    # 2 -> 3: each input's signature style (a wallet fingerprint feature); rows ingested
    # before keep NULL, which the fingerprint reads as "unknown"
    2: ("ALTER TABLE inputs ADD COLUMN IF NOT EXISTS sig_flags TINYINT",),
}

VIEWS: dict[str, str] = {
    "outputs_spent": """
        SELECT o.*, i.tx_id AS spent_by_tx_id, i.n AS spent_by_n
        FROM outputs o LEFT JOIN inputs i ON i.prev_tx_id = o.tx_id AND i.prev_n = o.n
    """,
    "address_stats": """
        WITH r AS (
            SELECT o.addr_id, o.value, t.height, o.tx_id FROM outputs o
            JOIN txs t USING (tx_id) WHERE o.addr_id IS NOT NULL
        ), s AS (
            SELECT i.addr_id, i.value, t.height, i.tx_id FROM inputs i
            JOIN txs t USING (tx_id) WHERE i.addr_id IS NOT NULL
        )
        SELECT a.addr_id,
               coalesce(rr.received, 0) AS received,
               coalesce(ss.sent, 0) AS sent,
               coalesce(rr.received, 0) - coalesce(ss.sent, 0) AS balance,
               least(rr.first_height, ss.first_height) AS first_height,
               greatest(rr.last_height, ss.last_height) AS last_height
        FROM addresses a
        LEFT JOIN (SELECT addr_id, sum(value)::BIGINT AS received, min(height) AS first_height,
                          max(height) AS last_height FROM r GROUP BY addr_id) rr USING (addr_id)
        LEFT JOIN (SELECT addr_id, sum(value)::BIGINT AS sent, min(height) AS first_height,
                          max(height) AS last_height FROM s GROUP BY addr_id) ss USING (addr_id)
    """,
}
