"""Batch change on UTXO chains: a batching service's change, found where its next batch spends it.

Heuristic: services that pay many people at once — an exchange's withdrawal batches, a payroll,
a mining pool's payouts — send a *batch*: one transaction with `min_outputs` outputs or more
(OP_RETURN aside), which is not a CoinJoin. The change of a batch is rarely found by the change
heuristics over one transaction (`ChangeLinker` looks at two-output transactions; among many
payees several share the change's script type, several are fresh). But it shows when it is
spent: the service's next batch spends it, often as its only input. So in a batch B1, the
output o is B1's change, and o's address is linked to B1's first input address, when, at the
transaction B2 that spends o:

- B2 is a batch whose only input is o, at most `max_blocks` after B1;
- o is B1's largest output, strictly: a service's change carries what is left of its wallet,
  while each payee takes a share (the "largest output" reading of Nick 2015 and Möser &
  Narayanan 2022's value features, applied to batches only);
- o's address was first paid by B1 (fresh change; a reused address is never called change);
- B2 carries B1's wallet fingerprint — version, nSequence style and the one script type its
  inputs spend (Möser & Narayanan 2022; Kappos et al. 2022). nLockTime is left out: wallets
  that set it against fee sniping write the height they were at, which moves with each batch;
- B1 is not *contested*: no other output of B1 has been spent before, as the only input of a
  batch with B1's fingerprint. Two outputs of one batch that are both spent the way its change
  would be cannot be told apart, so neither is linked.

Each link is dated at B2, the transaction that completed its evidence, and records B1, B2 and
what the three tests saw. It is causal: it uses what is known at B2 only, so `--as-of` replays
it exactly.

Measured on the regtest economy (docs/accuracy.md): the exchange's withdrawal batches spend the
previous batch's change alone, so each batch's change stays apart from the hot wallet without
this heuristic. Considered and rejected there: linking any batch output that the next batch
spends alone (8 of 74 such links on one seed were wrong: employers withdraw their payroll money
from the exchange and pay their staff from it in one batch, so the withdrawal looks like the
exchange's change), and taking the first such output in time (an employer's payroll can spend
its withdrawal before the exchange spends its change). The largest output with the
fingerprint, uncontested, made no wrong link on three seeds; without the contest rule it made
one (an employer's withdrawal was the largest output of a batch whose smaller change the
exchange had already spent alone).

Known false positives:

- a customer whose withdrawal is larger than everything else in the batch, change included
  (the service's wallet nearly empty, or a very large withdrawal), who spends it alone in a
  batch with the same wallet software and settings (an OTC desk or a payroll company using the
  exchange's own wallet software): the customer is joined to the service;
- a service that pays a batch to another of its own wallets is still one owner: no error;
- services whose change is not the largest output are missed, not mislinked.

State lives in the heuristic: the batches of the last `max_blocks` blocks (the engine replays
that window before a run that does not start at genesis).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cointrail.analysis.clustering.heuristics import ClusterLink, Heuristic, TxContext
from cointrail.analysis.txview import Freshness, TxView
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import InputError

CITATION = ("Nick 2015 (largest output); Möser & Narayanan 2022 and Kappos et al. 2022 "
            "(wallet fingerprints); applied to batches spent by the next batch")


@dataclass(frozen=True, slots=True)
class _Batch:
    height: int
    anchor: int  # the first input address
    change_value: int  # the strictly largest output's value
    change_addr: int
    outputs: int
    fingerprint: tuple[int, str, str]


@dataclass(frozen=True, slots=True)
class BatchEvidence:
    """Why a link was made: the batch whose change it is and the batch that spent it (store tx
    ids), the change's value, and the fingerprint both share."""

    tx_id: int  # the spending batch, which the link is dated at
    a: int  # the first input address of the batch
    b: int  # the change address
    batch_tx: int
    outputs: int
    spender_outputs: int
    value: int
    fingerprint: tuple[int, str, str]


def _fingerprint(tx: TxView) -> tuple[int, str, str] | None:
    """Version, nSequence style and the one input script type (None when inputs mix types)."""
    style = tx.style
    if style.input_script_type is None:
        return None
    return (tx.version, str(style.sequence), str(style.input_script_type))


@dataclass(eq=False)
class BatchChange(Heuristic):
    """The change of a batch, linked when the next batch spends it; see the module docstring."""

    name: ClassVar[str] = "batch_change"
    version: ClassVar[str] = "1"

    min_outputs: int = 3
    max_blocks: int = 1008

    #: batches whose largest output may still turn out to be their change (neither spent
    #: like change nor contested yet), by tx id
    _batches: dict[int, _Batch] = field(default_factory=dict, init=False, repr=False)
    _order: deque[tuple[int, int]] = field(default_factory=deque, init=False, repr=False)
    _last_tx: int = field(default=-1, init=False, repr=False)
    evidence: list[BatchEvidence] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.min_outputs < 3 or self.max_blocks < 0:
            raise InputError(
                f"batch_change needs min_outputs >= 3 and max_blocks >= 0, not "
                f"{self.min_outputs} and {self.max_blocks}")

    def params(self) -> dict[str, object]:
        return {"min_outputs": self.min_outputs, "max_blocks": self.max_blocks}

    def replay_from(self, height: int) -> int:
        """The first height a run continuing after `height` must have fed the heuristic: the
        batches it remembers are those of the last `max_blocks` blocks."""
        return max(0, height + 1 - self.max_blocks)

    def links(self, tx: TxView, ctx: TxContext) -> list[ClusterLink]:
        """The link `tx` completes. Transactions must come in chain order."""
        if tx.tx_id <= self._last_tx:
            raise InputError(
                f"batch_change must see transactions in chain order: tx {tx.tx_id} came "
                f"after tx {self._last_tx}")
        self._last_tx = tx.tx_id
        self.evidence = []
        while self._order and self._order[0][0] < tx.height - self.max_blocks:
            self._batches.pop(self._order.popleft()[1], None)
        if tx.is_coinbase or ctx.coinjoin is not None or ctx.multi_owner or not tx.inputs:
            return []
        paid = [o for o in tx.outputs if o.script_type is not ScriptType.NULLDATA]
        if len(paid) < self.min_outputs:
            return []
        fingerprint = _fingerprint(tx)
        out: list[ClusterLink] = []
        if len(tx.inputs) == 1 and fingerprint is not None:
            spent = tx.inputs[0]
            batch = self._batches.get(spent.prev_tx_id)
            if batch is not None and batch.fingerprint == fingerprint:
                # spent like its change: linked if it is the largest output, else a contest
                del self._batches[spent.prev_tx_id]
                if (spent.value == batch.change_value and spent.addr_id == batch.change_addr
                        and batch.anchor != batch.change_addr):
                    out.append(ClusterLink(batch.anchor, batch.change_addr, tx.tx_id,
                                           self.name))
                    self.evidence.append(BatchEvidence(
                        tx.tx_id, batch.anchor, batch.change_addr, spent.prev_tx_id,
                        batch.outputs, len(paid), batch.change_value, fingerprint))
        self._remember(tx, paid, fingerprint)
        return out

    def _remember(self, tx: TxView, paid: list[Any], fingerprint: tuple[int, str, str] | None
                  ) -> None:
        anchor = tx.first_input_addr_id
        if anchor is None or fingerprint is None:
            return
        top = max(o.value for o in paid)
        largest = [o for o in paid if o.value == top]
        if len(largest) != 1:
            return
        (change,) = largest
        if change.addr_id is None or tx.freshness(change) is not Freshness.FRESH:
            return
        self._batches[tx.tx_id] = _Batch(tx.height, anchor, change.value, change.addr_id,
                                         len(paid), fingerprint)
        self._order.append((tx.height, tx.tx_id))


__all__ = ["CITATION", "BatchChange", "BatchEvidence"]
