"""``flags SUBJECT``: run the FATF red-flag rules on an address or a cluster."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cointrail.interfaces.cli.case_cmds import CaseOption, case_option, record_query_in_case
from cointrail.interfaces.cli.common import get_state, handle_errors, human_console, print_json
from cointrail.interfaces.cli.store_cmds import JsonOption, _open

SubjectArg = Annotated[str, typer.Argument(
    metavar="ADDRESS|cluster:ID", help="The address or cluster to check.")]
RulesOpt = Annotated[str | None, typer.Option(
    "--rules", metavar="NAMES",
    help="Comma-separated rules (default: all): peel_chain, pass_through, fan_in, "
         "dormancy_burst, structuring, mixer_exposure.")]
ThresholdOpt = Annotated[str | None, typer.Option(
    "--threshold", metavar="AMOUNT",
    help="Structuring threshold: satoshi, or fiat with --price-table "
         "(default 100000000 sat, or 10000 fiat).")]
PriceOpt = Annotated[Path | None, typer.Option(
    "--price-table", metavar="CSV",
    help="Daily prices (columns date,price) to test structuring in fiat.")]
CurrencyOpt = Annotated[str, typer.Option(
    "--currency", metavar="CODE", help="The price table's currency, for the report.")]


def flags_cmd(
    ctx: typer.Context, subject: SubjectArg, rules: RulesOpt = None,
    threshold: ThresholdOpt = None, price_table: PriceOpt = None, currency: CurrencyOpt = "",
    as_json: JsonOption = False, case: CaseOption = None,
) -> None:
    """Red flags (FATF VA indicators) of an address or cluster, each with its evidence.

    One indicator alone proves nothing: the hits are leads for an analyst to review."""
    from cointrail.analysis.risk.rules import RULE_NAMES, evaluate, resolve_subject
    from cointrail.cases.queries import flags_doc, flags_rules
    from cointrail.errors import InputError

    state = get_state(ctx)
    with handle_errors(state.debug):
        structuring: dict[str, Any] | None = None
        if threshold is not None or price_table is not None:
            limit: int | str = "10000" if price_table is not None else 100_000_000
            if threshold is not None:
                text = threshold.strip()
                if price_table is None:
                    if not text.isdigit():
                        raise InputError(f"--threshold {threshold!r}: give whole satoshi "
                                         "(or add --price-table for a fiat amount)")
                    limit = int(text)
                else:
                    try:
                        float(text)
                    except ValueError:
                        raise InputError(f"--threshold {threshold!r} is not a number") \
                            from None
                    limit = text
            table = None
            if price_table is not None:
                try:
                    digest = hashlib.sha256(price_table.read_bytes()).hexdigest()
                except OSError as exc:
                    raise InputError(f"cannot read the price table {price_table}: "
                                     f"{exc.strerror}") from None
                table = {"path": str(price_table.resolve()), "sha256": digest}
            structuring = {"threshold": limit, "price_table": table, "currency": currency}
        names = (list(RULE_NAMES) if rules is None
                 else [n.strip() for n in rules.split(",") if n.strip()])
        request = {"chain": state.spec.chain, "network": state.spec.network,
                   "subject": subject, "rules": names, "structuring": structuring}
        chosen = flags_rules(request)
        in_case = case_option(state, case)
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        target = resolve_subject(store, subject)
        hits = evaluate(store, target, chosen)
        doc: dict[str, Any] = flags_doc(target, chosen, hits)
    if in_case is not None:
        with handle_errors(state.debug):
            record_query_in_case(in_case, "flags", "flags", request, doc,
                                 f"red flags of {subject}")
    if as_json:
        print_json(json.dumps(doc, indent=2, default=str))
        return
    console = human_console()
    if not hits:
        console.print(f"{target.text}: no red flags from {len(chosen)} rule(s)")
        return
    console.print(f"{target.text}: {len(hits)} red flag(s) — leads for review, not proof")
    for hit in hits:
        console.print(f"  {hit.rule} v{hit.version}: {hit.explanation}")
        for e in hit.evidence[:10]:
            fiat = f" ({e.fiat})" if e.fiat is not None else ""
            console.print(f"    {e.role} {e.txid} at height {e.height}: {e.amount} sat{fiat}")
        if len(hit.evidence) > 10:
            console.print(f"    … {len(hit.evidence) - 10} more (use --json for all)")
