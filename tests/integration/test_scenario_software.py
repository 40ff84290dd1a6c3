"""The scenario's second wallet software: light-wallet users next to Litecoin Core.

`tests.support.scenario` gives a quarter of its ordinary users a light wallet
(``Profile.software == "light"``) whose payments the scenario builds and signs itself. These
tests act a scenario out on a real ``litecoind -regtest`` and check, from the node's own
decoding, that those payments carry the light wallet's fingerprint (version 1, nLockTime 0,
final nSequence, BIP 69 order, change of the payer's receive type, signatures without low-R
grinding) and every other transaction Core's (no high-R signature), and that choosing the light
users changes nothing else of the plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.litecoind import LitecoindNode, to_sat
from tests.support.scenario import (
    ADDRESS_TYPES,
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
    all_core = plan_scenario(SEED, scale, light_share=0.0)
    all_light = plan_scenario(SEED, scale, light_share=1.0)
    users = [p.wallet for p in plan.profiles if p.role is Role.USER]
    light = [p for p in plan.profiles if p.software == "light"]
    assert {p.role for p in light} == {Role.USER}
    assert len(light) == round(LIGHT_SHARE * len(users)) > 0
    assert {p.software for p in plan.profiles} == {"core", "light"}
    assert {p.software for p in all_core.profiles} == {"core"}
    assert [p.wallet for p in all_light.profiles if p.software == "light"] == users
    # the same actions, amounts and schedule, and the same profiles but for the software
    for other in (all_core, all_light):
        assert other.steps == plan.steps
        assert (other.seed, other.scale, other.initial_blocks) == (
            plan.seed, plan.scale, plan.initial_blocks)
        assert [dataclasses.replace(p, software="core") for p in other.profiles] == [
            dataclasses.replace(p, software="core") for p in plan.profiles]
    assert len({plan.digest, all_core.digest, all_light.digest}) == 3
    # the sample depends on the seed
    other_seed = plan_scenario(SEED + 1, scale)
    assert {p.wallet for p in other_seed.profiles if p.software == "light"} != {
        p.wallet for p in light}
    with pytest.raises(ValueError):
        plan_scenario(SEED, scale, light_share=1.5)


def light_payments(plan: Plan) -> dict[tuple[str, int], Pay]:
    """(payer, step) -> the payment of every light user the plan makes."""
    light = {p.wallet for p in plan.profiles if p.software == "light"}
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


def payer_step(world: World, txid: str) -> tuple[str, int]:
    return world.facts.light_transactions[txid], (
        world.facts.tx_heights[txid] - world.plan.initial_blocks - 1)


def test_every_light_payment_was_made_by_the_light_wallet_and_nothing_else(
        world: World) -> None:
    facts, plan = world.facts, world.plan
    assert facts.software == {p.wallet: p.software for p in plan.profiles}
    assert facts.light_wallets == sorted(p.wallet for p in plan.profiles
                                         if p.software == "light")
    planned = light_payments(plan)
    made = {payer_step(world, t): t for t in facts.light_transactions}
    assert len(made) == len(facts.light_transactions)
    assert set(made) == set(planned)
    # on the chain: a transaction spends a light wallet's coins exactly when the light wallet
    # made it (the node's wallets never spend for a light user)
    light = set(facts.light_wallets)
    spent_by_light = set()
    for tx in world.txs:
        owners = {facts.owners.get(str(world.prevouts[(v["txid"], v["vout"])][2]))
                  for v in tx["vin"]}
        if owners & light:
            assert len(owners) == 1, (tx["txid"], owners)
            spent_by_light.add(tx["txid"])
            assert facts.light_transactions[tx["txid"]] in owners
    assert spent_by_light == set(facts.light_transactions)


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


def test_only_light_signatures_have_a_high_r(world: World) -> None:
    light_sigs: list[tuple[int, int]] = []
    core_sigs: list[tuple[int, int]] = []
    for tx in world.txs:
        found = [signatures(v) for v in tx["vin"]]
        if tx["txid"] in world.facts.light_transactions:
            assert [len(s) for s in found] == [1] * len(found), tx["txid"]  # one key each
            light_sigs += [s for sigs in found for s in sigs]
        else:
            core_sigs += [s for sigs in found for s in sigs]
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
