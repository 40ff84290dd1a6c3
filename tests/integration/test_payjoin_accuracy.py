"""PayJoins (BIP 78) in the synthetic economy: what they do to common-input clustering, and the
analyst's remedy (``cointrail cluster --multi-owner``).

A PayJoin has the payer's and the merchant's inputs, so common-input ownership joins two owners
there, and nothing on the chain tells it from an ordinary payment (`docs/accuracy.md`, "PayJoins").
`tests.support.scenario` makes a share of the Litecoin Core wallets' payments to merchants
PayJoins, built as BIP 78 builds them on a real ``litecoind -regtest``. The tests check that
the scenario's PayJoins are what BIP 78 says; that multi-input clustering errs at them and only
there; and that declaring them multi-owner gives exactly common-input ownership over the other
transactions (the ground-truth ceiling), with precision 1.0 again.
"""

from __future__ import annotations

import pytest

from cointrail.analysis.clustering.engine import ClusterConfig
from cointrail.analysis.clustering.evaluate import evaluate
from cointrail.store.duck import ChainStore, open_chain
from tests.support.scenario import PayJoin, oracle_partitions, plan_scenario
from tests.support.scenario_store import (
    CHAIN,
    NETWORK,
    ScenarioStore,
    build_scenario_store,
    clusters_of,
    partition_of,
)

pytestmark = pytest.mark.integration

SEED, SCALE, SHARE = 20240607, 1, 0.5


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ScenarioStore:
    return build_scenario_store(tmp_path_factory.mktemp("payjoin"), SEED, SCALE,
                                payjoin_share=SHARE)


def _txs(store: ChainStore, txids: list[str]) -> dict[str, tuple[int, int, int]]:
    """txid -> (tx_id, version, lock_time)."""
    rows = store.query("SELECT txid, tx_id, version, lock_time FROM txs")
    wanted = set(txids)
    return {h: (int(t), int(v), int(lt)) for raw, t, v, lt in rows
            if (h := bytes(raw)[::-1].hex()) in wanted}


def test_the_payjoin_share_only_turns_merchant_payments_into_payjoins() -> None:
    plain, joined = plan_scenario(SEED, SCALE), plan_scenario(SEED, SCALE, payjoin_share=SHARE)
    assert plan_scenario(SEED, SCALE, payjoin_share=0.0).digest == plain.digest
    changed = [(a, b) for s, t in zip(plain.steps, joined.steps, strict=True)
               for a, b in zip(s, t, strict=True) if a != b]
    assert changed and all(isinstance(b, PayJoin) for _, b in changed)
    assert all((a.payer, a.payee, a.amount, a.purpose) == (b.payer, b.payee, b.amount, "payment")
               for a, b in changed)
    fewer = plan_scenario(SEED, SCALE, payjoin_share=SHARE / 2)
    fewer_joins = {(k, a) for k, s in enumerate(fewer.steps) for a in s if isinstance(a, PayJoin)}
    more_joins = {(k, a) for k, s in enumerate(joined.steps) for a in s if isinstance(a, PayJoin)}
    assert fewer_joins < more_joins  # a smaller share's PayJoins are among a larger share's


def test_payjoins_are_built_as_bip78_says(world: ScenarioStore) -> None:
    facts = world.facts
    assert len(facts.payjoins) >= 10, (len(facts.payjoins), len(facts.payjoin_fallbacks))
    with open_chain(world.pristine, CHAIN, NETWORK, read_only=True) as store:
        found = _txs(store, list(facts.payjoins) + facts.payjoin_fallbacks)
        assert len(found) == len(facts.payjoins) + len(facts.payjoin_fallbacks)
        for txid, (version, lock_time) in ((t, found[t][1:]) for t in found):
            # the payer's Litecoin Core settings: version 2, anti-fee-sniping nLockTime
            assert (version, lock_time) == (2, facts.tx_heights[txid] - 1), txid
        for txid, (payer, merchant) in facts.payjoins.items():
            tx_id, _, _ = found[txid]
            inputs = store.query(
                "SELECT a.text, i.script_type, i.sequence FROM inputs i JOIN addresses a"
                " USING (addr_id) WHERE i.tx_id = ? ORDER BY i.n", [tx_id])
            owners = [facts.owners[str(a)] for a, _, _ in inputs]
            assert set(owners) == {payer, merchant}, txid
            assert owners.count(merchant) == 1  # the receiver adds one coin
            assert len({t for _, t, _ in inputs}) == 1  # of the payer's script type
            assert len({s for _, _, s in inputs}) == 1  # and with the payer's nSequence
            outputs = store.query(
                "SELECT a.text FROM outputs o JOIN addresses a USING (addr_id)"
                " WHERE o.tx_id = ?", [tx_id])
            paid = [facts.owners[str(a)] for (a,) in outputs]
            assert paid.count(merchant) == 1 and set(paid) <= {payer, merchant}
        for txid in facts.payjoin_fallbacks:  # the original payment, the payer's inputs only
            tx_id, _, _ = found[txid]
            owners = {facts.owners[str(a)] for (a,) in store.query(
                "SELECT a.text FROM inputs i JOIN addresses a USING (addr_id)"
                " WHERE i.tx_id = ?", [tx_id])}
            assert len(owners) == 1 and facts.actors[owners.pop()] != "merchant"


def test_multi_input_joins_two_owners_at_payjoins_and_nowhere_else(world: ScenarioStore) -> None:
    facts = world.facts
    with world.clustered("multi", ClusterConfig(heuristics=("multi_input",))) as store:
        result = evaluate(store, facts.owners)
        rows = store.query(
            "SELECT t.txid, a.text, b.text FROM cluster_links l JOIN txs t USING (tx_id)"
            " JOIN addresses a ON a.addr_id = l.addr_a JOIN addresses b ON b.addr_id = l.addr_b")
    wrong = {bytes(t)[::-1].hex() for t, a, b in rows
             if facts.owners[str(a)] != facts.owners[str(b)]}
    assert wrong and wrong <= set(facts.payjoins)
    assert len(wrong) == len(facts.payjoins)  # every PayJoin joins its payer and merchant
    assert result.precision is not None and result.precision < 1.0


def test_declaring_the_payjoins_gives_common_input_ownership_over_the_rest(
    world: ScenarioStore,
) -> None:
    facts = world.facts
    config = ClusterConfig(heuristics=("multi_input",), multi_owner=tuple(facts.payjoins),
                           multi_owner_from="the scenario's PayJoins")
    with world.clustered("declared", config) as store:
        result = evaluate(store, facts.owners)
        ours = clusters_of(store)
        labelled = store.query("SELECT count(*) FROM tx_labels WHERE label = 'multi_owner'")
        ceiling = oracle_partitions(store.con, facts)["inputs"]
    assert result.precision == 1.0
    assert labelled == [(len(facts.payjoins),)]
    # the perfect-detection ceiling skips the scenario's CoinJoins and PayJoins; cointrail
    # skips the CoinJoins it detects and the PayJoins declared: the same partition
    assert ours == partition_of(ceiling)
