"""The scenario's other wallet software: light wallets and hardware signers next to Litecoin Core.

`tests.support.scenario` gives a quarter of its ordinary users a light wallet
(``Profile.software == "light"``) and 15 % a hardware signer behind Core-like settings
(``"hardware"``); the scenario builds and signs their payments itself. These tests act a
scenario out on a real ``litecoind -regtest`` and check, from the node's own decoding, that
the light payments carry the light wallet's fingerprint (version 1, nLockTime 0, final
nSequence, BIP 69 order, change of the payer's receive type, signatures without low-R
grinding), the hardware signers' carry Core's settings with their own change type and
signatures without grinding, every other transaction Core's (no high-R signature), and that
choosing these users changes nothing else of the plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cointrail.analysis.txview import iter_tx_views
from cointrail.chain.rpc import RpcClient
from cointrail.chain.utxo.sigstyle import SIG_ECDSA, SIG_HIGH_R, SIG_NOT_ALL
from cointrail.store.duck import open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import sync_rpc
from tests.support.litecoind import LitecoindNode, to_sat
from tests.support.scenario import (
    ADDRESS_TYPES,
    HARDWARE_SHARE,
    LIGHT_MIN_CHANGE,
    LIGHT_SHARE,
    NODE_ARGS,
    Pay,
    Plan,
    Role,
    ScenarioFacts,
    build_scenario,
    plan_scenario,
)

pytestmark = pytest.mark.integration

#: A seed whose light users (at scale 1) have every receive type, and pay with "subtract fee
#: from amount", to the exchange and a ransom (test_the_seed_exercises_every_light_path).
SEED = 20
SCALE = 1
#: The node's names of the script types a user's receive address type gives.
RECEIVE_TYPE = {"pubkeyhash": "legacy", "scripthash": "p2sh-segwit",
                "witness_v0_keyhash": "bech32"}


@dataclass
class World:
    node: LitecoindNode
    facts: ScenarioFacts
    plan: Plan
    txs: list[dict[str, Any]]  # every non-coinbase transaction of the chain, in chain order
    prevouts: dict[tuple[str, int], tuple[int, str, str | None]]  # -> value, script hex, address


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with LitecoindNode(extra_args=NODE_ARGS) as node:
        facts = build_scenario(node, SEED, SCALE)
        hashes = node.batch([("getblockhash", [h]) for h in range(facts.tip_height + 1)])
        txs: list[dict[str, Any]] = []
        prevouts: dict[tuple[str, int], tuple[int, str, str | None]] = {}
        for start in range(0, len(hashes), 50):
            for block in node.batch([("getblock", [h, 2]) for h in hashes[start:start + 50]]):
                for tx in block["tx"]:
                    for vout in tx["vout"]:
                        spk = vout["scriptPubKey"]
                        prevouts[(tx["txid"], int(vout["n"]))] = (
                            to_sat(vout["value"]), str(spk["hex"]), address_of(spk))
                    if "coinbase" not in tx["vin"][0]:
                        txs.append(tx)
        yield World(node, facts, plan_scenario(SEED, SCALE), txs, prevouts)


def address_of(script_pubkey: dict[str, Any]) -> str | None:
    """The address of a decoded scriptPubKey (``addresses`` in Litecoin Core 0.21)."""
    if "address" in script_pubkey:
        return str(script_pubkey["address"])
    addresses = script_pubkey.get("addresses") or []
    return str(addresses[0]) if len(addresses) == 1 else None


# -- reading signatures ------------------------------------------------------------------------


def pushes(script: bytes) -> list[bytes]:
    """The data pushed by `script` (other opcodes are skipped)."""
    items, i = [], 0
    while i < len(script):
        op = script[i]
        i += 1
        if 0 < op < 0x4C:
            size = op
        elif op in (0x4C, 0x4D, 0x4E):
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            size = int.from_bytes(script[i:i + width], "little")
            i += width
        else:
            continue
        items.append(script[i:i + size])
        i += size
    return items


def der_signature(item: bytes) -> tuple[int, int] | None:
    """(length of r, sighash byte) if `item` is a strict-DER ECDSA signature followed by a
    sighash byte, else None."""
    if len(item) < 9 or item[0] != 0x30 or item[1] != len(item) - 3 or item[2] != 0x02:
        return None
    r_len = item[3]
    s_at = 4 + r_len
    if s_at + 2 > len(item) - 1 or item[s_at] != 0x02:
        return None
    s_len = item[s_at + 1]
    if s_at + 2 + s_len != len(item) - 1 or r_len == 0 or s_len == 0:
        return None
    r = item[4:s_at]
    if r[0] & 0x80 or (r_len > 1 and r[0] == 0 and not r[1] & 0x80):
        return None  # negative or not minimally encoded
    return r_len, item[-1]


def signatures(vin: dict[str, Any]) -> list[tuple[int, int]]:
    """(r length, sighash byte) of every signature in an input's scriptSig and witness."""
    items = pushes(bytes.fromhex(vin["scriptSig"]["hex"]))
    items += [bytes.fromhex(w) for w in vin.get("txinwitness", [])]
    return [sig for sig in map(der_signature, items) if sig is not None]


def test_signature_reader_tells_high_r_from_low_r() -> None:
    low = bytes([0x30, 0x44, 0x02, 0x20, 0x7F, *[1] * 31, 0x02, 0x20, 0x01, *[2] * 31, 0x01])
    high = bytes([0x30, 0x45, 0x02, 0x21, 0x00, 0x80, *[1] * 31, 0x02, 0x20, 0x01, *[2] * 31,
                  0x01])
    pubkey = bytes([0x02, *[3] * 32])
    script = bytes([len(high)]) + high + bytes([len(pubkey)]) + pubkey
    assert pushes(script) == [high, pubkey]
    assert der_signature(low) == (32, 1)
    assert der_signature(high) == (33, 1)
    assert der_signature(pubkey) is None
    assert der_signature(bytes([0x00, 0x14, *[4] * 20])) is None  # a P2SH-P2WPKH redeem script
    assert signatures({"scriptSig": {"hex": script.hex()}, "txinwitness": [low.hex()]}) == [
        (33, 1), (32, 1)]


# -- the plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 4])
def test_light_users_are_a_seeded_minority_that_changes_nothing_else(scale: int) -> None:
    plan = plan_scenario(SEED, scale)
    assert plan_scenario(SEED, scale) == plan
    all_core = plan_scenario(SEED, scale, light_share=0.0, hardware_share=0.0)
    all_light = plan_scenario(SEED, scale, light_share=1.0)
    no_hardware = plan_scenario(SEED, scale, hardware_share=0.0)
    users = [p.wallet for p in plan.profiles if p.role is Role.USER]
    light = [p for p in plan.profiles if p.software == "light"]
    hardware = [p for p in plan.profiles if p.software == "hardware"]
    assert {p.role for p in light + hardware} == {Role.USER}
    assert len(light) == round(LIGHT_SHARE * len(users)) > 0
    assert len(hardware) == round(HARDWARE_SHARE * len(users)) > 0
    assert {p.software for p in plan.profiles} == {"core", "light", "hardware"}
    assert {p.software for p in all_core.profiles} == {"core"}
    assert [p.wallet for p in all_light.profiles if p.software == "light"] == users
    # the light users do not depend on the hardware share
    assert [p for p in no_hardware.profiles if p.software == "light"] == light
    assert {p.software for p in no_hardware.profiles} == {"core", "light"}
    # the same actions, amounts and schedule, and the same profiles but for the software
    for other in (all_core, all_light, no_hardware):
        assert other.steps == plan.steps
        assert (other.seed, other.scale, other.initial_blocks) == (
            plan.seed, plan.scale, plan.initial_blocks)
        assert [dataclasses.replace(p, software="core") for p in other.profiles] == [
            dataclasses.replace(p, software="core") for p in plan.profiles]
    assert len({plan.digest, all_core.digest, all_light.digest, no_hardware.digest}) == 4
    # the sample depends on the seed
    other_seed = plan_scenario(SEED + 1, scale)
    assert {p.wallet for p in other_seed.profiles if p.software == "light"} != {
        p.wallet for p in light}
    with pytest.raises(ValueError):
        plan_scenario(SEED, scale, light_share=1.5)
    with pytest.raises(ValueError):
        plan_scenario(SEED, scale, hardware_share=-0.1)


def light_payments(plan: Plan, software: str = "light") -> dict[tuple[str, int], Pay]:
    """(payer, step) -> the payment of every user of `software` the plan makes."""
    light = {p.wallet for p in plan.profiles if p.software == software}
    found = {}
    for step, actions in enumerate(plan.steps):
        for action in actions:
            if isinstance(action, Pay) and action.payer in light:
                assert (action.payer, step) not in found  # one spend per wallet and step
                found[(action.payer, step)] = action
    return found


def test_the_seed_exercises_every_light_path() -> None:
    plan = plan_scenario(SEED, SCALE)
    profiles = {p.wallet: p for p in plan.profiles}
    pays = light_payments(plan).values()
    assert {profiles[p.payer].address_type for p in pays} == set(ADDRESS_TYPES)
    assert {p.purpose for p in pays} == {"payment", "deposit", "ransom"}
    assert any(p.subtract_fee for p in pays) and not all(p.subtract_fee for p in pays)


# -- the chain ---------------------------------------------------------------------------------


def own_transactions(facts: ScenarioFacts, software: str) -> dict[str, str]:
    """txid -> payer of the transactions the scenario built for `software`'s users."""
    return {"light": facts.light_transactions, "hardware": facts.hardware_transactions}[software]


def payer_step(world: World, txid: str) -> tuple[str, int]:
    payer = world.facts.light_transactions.get(txid) or world.facts.hardware_transactions[txid]
    return payer, world.facts.tx_heights[txid] - world.plan.initial_blocks - 1


@pytest.mark.parametrize("software", ["light", "hardware"])
def test_every_payment_of_a_non_core_wallet_was_made_by_that_wallet_and_nothing_else(
        world: World, software: str) -> None:
    facts, plan = world.facts, world.plan
    made_by = own_transactions(facts, software)
    assert facts.software == {p.wallet: p.software for p in plan.profiles}
    wallets = facts.light_wallets if software == "light" else facts.hardware_wallets
    assert wallets == sorted(p.wallet for p in plan.profiles if p.software == software)
    planned = light_payments(plan, software)
    made = {payer_step(world, t): t for t in made_by}
    assert len(made) == len(made_by)
    assert set(made) == set(planned)
    # on the chain: a transaction spends such a wallet's coins exactly when that wallet made it
    # (the node's wallets never spend for it)
    light = set(wallets)
    spent_by_light = set()
    for tx in world.txs:
        owners = {facts.owners.get(str(world.prevouts[(v["txid"], v["vout"])][2]))
                  for v in tx["vin"]}
        if owners & light:
            assert len(owners) == 1, (tx["txid"], owners)
            spent_by_light.add(tx["txid"])
            assert made_by[tx["txid"]] in owners
    assert spent_by_light == set(made_by)


def test_hardware_transactions_carry_core_settings_and_their_own_change_type(
        world: World) -> None:
    facts, node = world.facts, world.node
    profiles = {p.wallet: p for p in world.plan.profiles}
    planned = light_payments(world.plan, "hardware")
    change_first = change_last = 0
    for txid, payer in facts.hardware_transactions.items():
        profile, pay = profiles[payer], planned[payer_step(world, txid)]
        tx = node.rpc("getrawtransaction", txid, True)
        height = facts.tx_heights[txid]
        # Core's settings: version 2, nLockTime at the tip it was made on (the block before
        # the one that took it, here), RBF as the profile says
        assert tx["version"] == 2 and height - 3 <= tx["locktime"] < height, txid
        want = 0xFFFFFFFD if profile.replaceable else 0xFFFFFFFE
        assert {v["sequence"] for v in tx["vin"]} == {want}, txid
        outpoints = [(str(v["txid"]), int(v["vout"])) for v in tx["vin"]]
        addresses = [str(address_of(o["scriptPubKey"])) for o in tx["vout"]]
        mine = [bool(i["ismine"]) for i in node.batch(
            [("getaddressinfo", [a]) for a in addresses], wallet=payer)]
        change = [o for o, m in zip(tx["vout"], mine, strict=True) if m]
        paid = [o for o, m in zip(tx["vout"], mine, strict=True) if not m]
        assert len(paid) == 1 and len(change) <= 1, txid
        assert all(world.prevouts[o][2] in facts.addresses_of(payer) for o in outpoints), txid
        for o in change:  # the wallet's own type, where Core's change is bech32
            assert RECEIVE_TYPE[o["scriptPubKey"]["type"]] == profile.address_type, txid
            change_first += o["n"] == 0
            change_last += o["n"] == 1
        if not pay.subtract_fee:
            assert to_sat(paid[0]["value"]) == pay.amount, txid
    assert len(facts.hardware_transactions) >= 10
    assert change_first and change_last  # outputs in random order


def test_light_transactions_carry_the_light_wallet_fingerprint(world: World) -> None:
    facts, node = world.facts, world.node
    profiles = {p.wallet: p for p in world.plan.profiles}
    planned = light_payments(world.plan)
    tip = int(node.rpc("getblockcount"))
    change_types: set[str] = set()
    subtracted = 0
    for txid in facts.light_transactions:
        payer, step = payer_step(world, txid)
        profile, pay = profiles[payer], planned[(payer, step)]
        tx = node.rpc("getrawtransaction", txid, True)
        assert (tx["version"], tx["locktime"]) == (1, 0), txid
        assert {v["sequence"] for v in tx["vin"]} == {0xFFFFFFFF}, txid  # final: no RBF
        # BIP 69: inputs by previous txid (as shown) and index, outputs by value and script
        outpoints = [(str(v["txid"]), int(v["vout"])) for v in tx["vin"]]
        assert outpoints == sorted(outpoints), txid
        outputs = [(to_sat(o["value"]), bytes.fromhex(o["scriptPubKey"]["hex"]))
                   for o in tx["vout"]]
        assert outputs == sorted(outputs), txid
        # every input is the payer's; one output is the payee's, the other (if any) the change
        spent = [world.prevouts[o] for o in outpoints]
        addresses = [str(a) for _, _, a in spent] + [
            str(address_of(o["scriptPubKey"])) for o in tx["vout"]]
        mine = [bool(i["ismine"]) for i in node.batch(
            [("getaddressinfo", [a]) for a in addresses], wallet=payer)]
        assert all(mine[:len(spent)]), txid
        change = [o for o, m in zip(tx["vout"], mine[len(spent):], strict=True) if m]
        paid = [o for o, m in zip(tx["vout"], mine[len(spent):], strict=True) if not m]
        assert len(paid) == 1 and len(change) <= 1, txid
        for o in change:
            change_types.add(RECEIVE_TYPE[o["scriptPubKey"]["type"]])
            assert RECEIVE_TYPE[o["scriptPubKey"]["type"]] == profile.address_type, txid
            assert to_sat(o["value"]) >= LIGHT_MIN_CHANGE, txid
        total = sum(value for value, _, _ in spent)
        change_value = sum(to_sat(o["value"]) for o in change)
        payee = to_sat(paid[0]["value"])
        fee = total - payee - change_value
        # the amount, "subtract fee from amount" and the fee rate
        if pay.subtract_fee:  # the payee bears the fee; the change is what the amount left
            subtracted += 1
            assert payee < pay.amount <= total, txid
            if change:
                assert change_value == total - pay.amount, txid
            else:
                assert total - pay.amount < LIGHT_MIN_CHANGE, txid
        else:
            assert payee == pay.amount, txid
        vsize = int(tx["vsize"])
        assert fee >= profile.fee_rate * vsize, (txid, fee, vsize, profile.fee_rate)
        slack = 2 * len(spent) + 1 + 43  # longest signatures, rounding, a change output
        assert fee <= profile.fee_rate * (vsize + slack) + LIGHT_MIN_CHANGE, (txid, fee)
        # the oldest coins first: without the youngest input the payment was not covered
        heights = [tip - int(p["confirmations"]) + 1 for p in node.batch(
            [("getrawtransaction", [t, True]) for t, _ in outpoints])]
        youngest = max(range(len(spent)),
                       key=lambda i: (heights[i], outpoints[i][0], outpoints[i][1]))
        rest = total - spent[youngest][0]
        assert rest < pay.amount + (0 if pay.subtract_fee else fee), txid
    assert len(facts.light_transactions) >= 20
    assert subtracted > 0
    assert change_types == set(ADDRESS_TYPES), change_types


def test_only_the_scenario_signers_make_a_high_r(world: World) -> None:
    light_sigs: list[tuple[int, int]] = []
    core_sigs: list[tuple[int, int]] = []
    hardware_sigs: list[tuple[int, int]] = []
    for tx in world.txs:
        found = [signatures(v) for v in tx["vin"]]
        if tx["txid"] in world.facts.light_transactions:
            assert [len(s) for s in found] == [1] * len(found), tx["txid"]  # one key each
            light_sigs += [s for sigs in found for s in sigs]
        elif tx["txid"] in world.facts.hardware_transactions:
            assert [len(s) for s in found] == [1] * len(found), tx["txid"]
            hardware_sigs += [s for sigs in found for s in sigs]
        else:
            core_sigs += [s for sigs in found for s in sigs]
    hardware_high = sum(r == 33 for r, _ in hardware_sigs)
    assert len(hardware_sigs) >= 15
    assert 0.2 <= hardware_high / len(hardware_sigs) <= 0.8, (hardware_high, len(hardware_sigs))
    high = sum(r == 33 for r, _ in light_sigs)
    share = high / len(light_sigs)
    report = (f"{high} of {len(light_sigs)} light-wallet signatures have a 33-byte r "
              f"({share:.0%}); Core: {sum(r == 33 for r, _ in core_sigs)} of {len(core_sigs)}")
    assert {h for _, h in light_sigs + core_sigs} == {1}, report  # SIGHASH_ALL
    assert {r for r, _ in light_sigs + core_sigs} <= set(range(1, 34)), report
    assert len(light_sigs) >= 30 and len(core_sigs) >= 100, report
    assert 0.2 <= share <= 0.8, report  # without grinding, about half
    assert [r for r, _ in core_sigs if r > 32] == [], report  # Core grinds for a low r
    print(report)


def test_the_store_reads_each_inputs_signature_style_as_the_node_decodes_it(
        world: World, tmp_path: Path) -> None:
    """Synced into a cointrail store, every input's `sig_flags` (high R, ECDSA, sighash) agree
    with the signatures in the node's own decoding, and the wallet fingerprint sees the
    hardware signers' and light wallets' transactions as non-grinding."""
    node = world.node
    url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
    with open_chain(tmp_path / "store", "litecoin", "regtest") as store, RpcClient(url) as client:
        sync_rpc(UtxoIngestor(store), client)
        rows = store.query(
            "SELECT t.txid, i.n, i.sig_flags FROM inputs i JOIN txs t USING (tx_id)")
        flags = {(bytes(txid)[::-1].hex(), n): f for txid, n, f in rows}
        styles = {}
        for tx_id, txid in store.query(
                "SELECT tx_id, txid FROM txs WHERE NOT is_coinbase ORDER BY tx_id"):
            (view,) = iter_tx_views(store.con, tx_id, tx_id)
            styles[bytes(txid)[::-1].hex()] = view.style
    checked = 0
    for tx in world.txs:
        for n, vin in enumerate(tx["vin"]):
            sigs = signatures(vin)
            got = flags[(tx["txid"], n)]
            assert got is not None
            assert bool(got & SIG_ECDSA) == bool(sigs), (tx["txid"], n)
            assert bool(got & SIG_HIGH_R) == any(r == 33 for r, _ in sigs), (tx["txid"], n)
            assert not got & SIG_NOT_ALL
            checked += 1
    assert checked == len(flags) >= 500
    own = set(world.facts.light_transactions) | set(world.facts.hardware_transactions)
    assert any(styles[t].high_r for t in own)
    assert not any(style.high_r for t, style in styles.items() if t not in own)
