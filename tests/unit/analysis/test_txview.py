"""Transaction views read from a real store (mainnet blocks 0–438, ingested here), checked
against the store's own per-transaction totals, against an independent walk of the outputs for
address freshness, and against the published facts of the first bitcoin transfer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cointrail import get_chain
from cointrail.analysis.txview import (
    ANTI_FEE_SNIPING_WINDOW,
    Freshness,
    InputView,
    LockTimeStyle,
    OutputView,
    SequenceStyle,
    TxStyle,
    TxView,
    iter_tx_views,
    lock_time_style,
    sequence_style,
)
from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.sigstyle import SIG_ECDSA
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import InputError
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles

COIN = 100_000_000
FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
P2WPKH = ScriptType.WITNESS_V0_KEYHASH


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    chain = Store(tmp_path_factory.mktemp("store")).chain(get_chain("bitcoin", "mainnet"))
    ingest_blkfiles(UtxoIngestor(chain), str(bundled_path(EARLY_MAINNET_BLOCKS)))
    yield chain
    chain.close()


@pytest.fixture(scope="module")
def views(store: ChainStore) -> list[TxView]:
    return list(iter_tx_views(store.con, 0, 10**12))


def test_every_transaction_in_chain_order(store: ChainStore, views: list[TxView]) -> None:
    rows = store.query(
        "SELECT tx_id, height, version, lock_time, is_coinbase, input_count, output_count,"
        " coalesce(input_value, 0), output_value FROM txs ORDER BY tx_id"
    )
    assert len(views) == len(rows) == 446
    for view, row in zip(views, rows, strict=True):
        tx_id, height, version, lock_time, coinbase, n_in, n_out, value_in, value_out = row
        assert (view.tx_id, view.height, view.version, view.lock_time) == (
            tx_id, height, version, lock_time
        )
        assert view.is_coinbase == coinbase
        assert len(view.inputs) == (0 if coinbase else n_in)
        assert len(view.outputs) == n_out
        assert [o.n for o in view.outputs] == list(range(n_out))
        assert sum(i.value for i in view.inputs) == value_in
        assert sum(o.value for o in view.outputs) == value_out


def test_batches_and_ranges_give_the_same_views(store: ChainStore, views: list[TxView]) -> None:
    for batch_size in (7, 445, 10_000):
        assert list(iter_tx_views(store.con, 0, 445, batch_size=batch_size)) == views
    assert list(iter_tx_views(store.con, 160, 200, batch_size=1)) == views[160:201]
    assert list(iter_tx_views(store.con, 100, 199, batch_size=33)) == views[100:200]
    assert list(iter_tx_views(store.con, 500, 900)) == []
    assert list(iter_tx_views(store.con, 5, 4)) == []
    with pytest.raises(InputError):
        list(iter_tx_views(store.con, 0, 10, batch_size=0))


def test_freshness_matches_a_walk_of_the_outputs(views: list[TxView]) -> None:
    first_paid: dict[int, int] = {}
    for view in views:
        for o in view.outputs:
            assert o.addr_id is not None  # every output of blocks 0–438 has an address
            first_paid.setdefault(o.addr_id, view.tx_id)
            assert o.address_first_tx_id == first_paid[o.addr_id]
            expected = Freshness.FRESH if first_paid[o.addr_id] == view.tx_id else Freshness.REUSED
            assert view.freshness(o) is expected
    reused = [o for v in views for o in v.outputs if v.freshness(o) is Freshness.REUSED]
    assert reused  # Satoshi's change goes back to the key it spent


def test_first_bitcoin_transfer(store: ChainStore) -> None:
    """Block 170: Satoshi's 50 BTC coinbase of block 9 pays Hal Finney 10 BTC, 40 BTC back."""
    ((tx_id, coinbase_9),) = store.query(
        "SELECT t.tx_id, (SELECT first_tx_id FROM blocks WHERE height = 9) FROM txs t"
        " WHERE txid = ?",
        [bytes.fromhex(FIRST_TRANSFER)[::-1]],
    )
    (tx,) = iter_tx_views(store.con, tx_id, tx_id, with_spenders=True)
    assert tx.height == 170 and not tx.is_coinbase
    (spent,) = tx.inputs
    assert spent.value == 50 * COIN and spent.script_type is ScriptType.PUBKEY
    assert spent.sequence == 0xFFFFFFFF
    # one strictly DER-encoded signature (r of 32 bytes: 0x4e45e169...), SIGHASH_ALL
    assert spent.sig_flags == SIG_ECDSA
    hal, back = tx.outputs
    assert (hal.value, back.value) == (10 * COIN, 40 * COIN)
    assert back.addr_id == spent.addr_id and back.address_first_tx_id == coinbase_9
    assert tx.freshness(hal) is Freshness.FRESH and tx.freshness(back) is Freshness.REUSED
    assert tx.style == TxStyle(1, LockTimeStyle.ZERO, SequenceStyle.FINAL, ScriptType.PUBKEY,
                               low_r=1, high_r=False)
    # the 40 BTC were spent again by Satoshi in block 181, in the same style; Hal's were not
    assert back.spent_by == tx.style
    assert hal.spent_by is None


def test_spenders_match_the_outputs_spent_view(store: ChainStore, views: list[TxView]) -> None:
    spent = {
        (tx_id, n)
        for tx_id, n in store.query(
            "SELECT tx_id, n FROM outputs_spent WHERE spent_by_tx_id IS NOT NULL"
        )
    }
    assert spent
    for batch_size in (13, 1_000):
        with_spenders = list(
            iter_tx_views(store.con, 0, 445, batch_size=batch_size, with_spenders=True)
        )
        got = {(v.tx_id, o.n) for v in with_spenders for o in v.outputs if o.spent_by}
        assert got == spent
    assert all(o.spent_by is None for v in views for o in v.outputs)  # not asked for


def test_lock_time_and_sequence_styles() -> None:
    assert lock_time_style(0, 800_000) is LockTimeStyle.ZERO
    assert lock_time_style(799_999, 800_000) is LockTimeStyle.TIP_HEIGHT
    assert lock_time_style(800_000 - ANTI_FEE_SNIPING_WINDOW, 800_000) is LockTimeStyle.TIP_HEIGHT
    assert lock_time_style(700_000, 800_000) is LockTimeStyle.OTHER_HEIGHT
    assert lock_time_style(800_001, 800_000) is LockTimeStyle.OTHER_HEIGHT
    assert lock_time_style(1_700_000_000, 800_000) is LockTimeStyle.TIME
    assert sequence_style(0xFFFFFFFD, 0xFFFFFFFD) is SequenceStyle.RBF
    assert sequence_style(0xFFFFFFFE, 0xFFFFFFFE) is SequenceStyle.LOCKTIME
    assert sequence_style(0xFFFFFFFF, 0xFFFFFFFF) is SequenceStyle.FINAL
    assert sequence_style(0, 144) is SequenceStyle.OTHER
    assert sequence_style(0xFFFFFFFD, 0xFFFFFFFF) is SequenceStyle.MIXED
    assert sequence_style(None, None) is SequenceStyle.NONE


def test_view_helpers() -> None:
    tx = TxView(
        10, 800_000, 2, 799_990,
        (InputView(None, 5, P2WPKH, 0xFFFFFFFD), InputView(4, 6, P2WPKH, 0xFFFFFFFD)),
        (OutputView(0, 4, 1, P2WPKH, 3), OutputView(1, 8, 1, P2WPKH, 10),
         OutputView(2, None, 0, ScriptType.NULLDATA, None), OutputView(3, 9, 1, P2WPKH, None)),
        False,
    )
    assert tx.first_input_addr_id == 4 and tx.input_addr_ids == frozenset({4})
    assert [tx.freshness(o) for o in tx.outputs] == [
        Freshness.REUSED, Freshness.FRESH, Freshness.UNKNOWN, Freshness.UNKNOWN
    ]
    assert tx.style == TxStyle(2, LockTimeStyle.TIP_HEIGHT, SequenceStyle.RBF, P2WPKH)
