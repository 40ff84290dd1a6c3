"""Clustering commands: ``cluster``, ``show cluster``, ``explain``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cointrail.analysis.clustering.names import (
    DEFAULT_GUARD_SIZE,
    HEURISTIC_NAMES,
    heuristic_names,
)
from cointrail.interfaces.cli.case_cmds import CaseOption, case_option, record_query_in_case
from cointrail.interfaces.cli.common import (
    AppState,
    SparkMasterOpt,
    SparkParquetOpt,
    SparkWorkDirOpt,
    get_state,
    handle_errors,
    human_console,
    print_json,
)
from cointrail.interfaces.cli.store_cmds import JsonOption, _emit, _open, _progress, show_app

if TYPE_CHECKING:
    from cointrail.analysis.clustering.engine import ClusterConfig

AsOf = Annotated[int | None, typer.Option("--as-of", metavar="HEIGHT",
                                          help="The clustering as it stood at this height.")]


def cluster_cmd(
    ctx: typer.Context,
    as_of: AsOf = None,
    heuristics: Annotated[str | None, typer.Option(
        help=f"Comma-separated heuristics: {', '.join(HEURISTIC_NAMES)} on UTXO chains "
             "(default multi_input); deposit_reuse on account chains such as Ethereum "
             "(the default there).")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", metavar="HEURISTIC.PARAMETER=VALUE",
        help="Set a UTXO heuristic's parameter, e.g. deposit_address.max_blocks=288 or "
             "batch_change.min_outputs=5, or one of the change linker's change heuristics, "
             "e.g. change.wallet_fingerprint.signatures=true (repeatable; recorded with the "
             "run, and a change rebuilds the clustering). docs/clustering.md lists each one.")
    ] = None,
    guard_size: Annotated[int, typer.Option(
        help="Supercluster guard: hold back weak links joining two clusters of at least this "
             "many addresses (0: off).")] = DEFAULT_GUARD_SIZE,
    no_coinjoin_detection: Annotated[bool, typer.Option(
        "--no-coinjoin-detection", help="Do not detect CoinJoins (not recommended).")] = False,
    multi_owner: Annotated[Path | None, typer.Option(
        "--multi-owner", metavar="FILE",
        help="UTXO chains: a file of txids (one per line) that have several owners — a "
             "PayJoin, a CoinJoin the detectors miss, a shared spend — known from outside the "
             "chain. No link is made at them; the file's name and SHA-256 are recorded with "
             "the run, and a change rebuilds the clustering.")] = None,
    engine: Annotated[str, typer.Option(
        help="embedded (this machine) or spark (multi_input only; see docs/scale-out.md).")
    ] = "embedded",
    master: SparkMasterOpt = "local[2]",
    parquet: SparkParquetOpt = None,
    work_dir: SparkWorkDirOpt = None,
    max_rounds: Annotated[int, typer.Option(
        metavar="N", help="Spark: bound on connected-components rounds.")] = 40,
    hot_wallet: Annotated[list[str] | None, typer.Option(
        metavar="ADDR", help="Account chains: an exchange hot wallet deposit addresses sweep "
                             "to (repeatable).")] = None,
    hot_wallet_category: Annotated[str, typer.Option(
        metavar="CATEGORY", help="Account chains: also take the addresses tagged with this "
                                 "category on this chain as hot wallets ('' for none). With "
                                 "no hot wallet at all, any address receiving forwards from "
                                 "--min-deposit-addresses addresses is taken for one.")
    ] = "exchange",
    max_blocks: Annotated[int, typer.Option(
        metavar="N", help="Account chains: a sweep follows its deposit within N blocks.")
    ] = 3200,
    max_fee_wei: Annotated[int, typer.Option(
        metavar="WEI", help="Account chains: an ether sweep may keep back at most this much "
                            "for gas.")] = 10**16,
    min_deposit_addresses: Annotated[int, typer.Option(
        metavar="N", help="Account chains, no hot wallet named: forwards from this many "
                          "addresses make a hot wallet.")] = 2,
    max_deposits_per_sender: Annotated[int, typer.Option(
        metavar="N", help="Account chains: a sender paying more deposit addresses is a "
                          "service (a hub) and is not linked.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Build or extend the address clustering up to the store's tip (or show it --as-of).

    Without --heuristics, --param, --guard-size, --no-coinjoin-detection or --multi-owner a
    UTXO store's clustering is extended with the configuration it was built with; a different
    one rebuilds it from genesis (and says so)."""
    from cointrail.analysis.clustering.engine import (
        ClusterConfig,
        Clusterer,
        cluster_view,
        parse_heuristic_params,
        read_multi_owner,
        stored_config,
    )
    from cointrail.errors import InputError

    state = get_state(ctx)
    given = _given(ctx)
    run_options = given & {"heuristics", "param", "guard_size", "no_coinjoin_detection",
                           "multi_owner"}
    account_options = given & set(_ACCOUNT_OPTIONS)
    spark_options = given & set(_SPARK_OPTIONS)
    reuse = (heuristics is None and not run_options and not state.spec.is_account_model
             and engine == "embedded")
    if heuristics is None:
        heuristics = "deposit_reuse" if state.spec.is_account_model else "multi_input"
    with handle_errors(state.debug):
        if as_of is not None and (run_options or account_options or spark_options
                                  or engine != "embedded"):
            raise InputError(
                f"--as-of shows the stored clustering as it stood at a height; it takes no run "
                f"options ({_flags(run_options | account_options | spark_options) or '--engine'}"
                "): drop them, or run `cointrail cluster` with them first")
        if account_options and not state.spec.is_account_model:
            raise InputError(
                f"{_flags(account_options)} apply to account chains (deposit_reuse); on "
                f"{state.spec.key} set the UTXO heuristics' parameters with --param, e.g. "
                "--param deposit_address.max_blocks=288")
        if spark_options and engine != "spark":
            raise InputError(f"{_flags(spark_options)} apply to --engine spark")
        if param and state.spec.is_account_model:
            raise InputError("--param sets the UTXO heuristics' parameters; on account chains "
                             "use --max-blocks, --max-fee-wei, --min-deposit-addresses and "
                             "--max-deposits-per-sender")
        if multi_owner is not None and state.spec.is_account_model:
            raise InputError("--multi-owner declares UTXO transactions; account chains link "
                             "by deposit-address reuse, not by transaction")
        declared, declared_from = (read_multi_owner(multi_owner) if multi_owner is not None
                                   else ((), ""))
        config = ClusterConfig(
            heuristics=tuple(h.strip() for h in heuristics.split(",") if h.strip()),
            coinjoin_detection=not no_coinjoin_detection,
            guard_size=guard_size,
            params=parse_heuristic_params(param or []),
            multi_owner=declared, multi_owner_from=declared_from,
        )
        if state.spec.is_account_model:
            if engine != "embedded":
                raise InputError("--engine spark clusters UTXO chains only (multi_input); "
                                 "account chains use the embedded engine")
            config = _account_config(
                config, state, hot_wallet or [], hot_wallet_category, max_blocks, max_fee_wei,
                min_deposit_addresses, max_deposits_per_sender)
        if engine not in ("embedded", "spark"):
            raise InputError(f"--engine {engine!r}: use embedded or spark")
    with handle_errors(state.debug), _open(state) as store:
        before = stored_config(store)
        if as_of is not None:
            view = cluster_view(store, as_of)
            summary = {"as_of_height": view.height, "addresses": int(view.ids.size),
                       "clusters": len(set(view.ids.tolist())),
                       "config": before[0] if before else None,
                       "config_hash": before[1] if before else None}
            if as_json:
                _emit(summary, as_json)
            else:
                human_console().print(
                    f"clustering as of height {view.height}: {summary['addresses']} addresses "
                    f"in {summary['clusters']} clusters "
                    f"({_heuristic_names(before[0] if before else None)})",
                    highlight=False)
            return
        notes: list[str] = []
        if reuse and before is not None:
            again = ClusterConfig.from_description(before[0])
            if again is not None and again.digest() == before[1]:
                config = again
                notes.append(f"extending the stored clustering's configuration "
                             f"({config.names()})")
            elif (newer := ClusterConfig.at_current_versions(before[0])) is not None:
                config = newer
                notes.append(
                    f"the stored clustering was made with {_heuristic_names(before[0])}, "
                    f"which this cointrail cannot reproduce; rebuilding it with the same "
                    f"heuristics at this version ({config.names()}) and their default "
                    "parameters (--heuristics and --param choose others)")
        if engine == "spark":
            from cointrail.scaleout.jobs import cluster_with_spark

            spark_doc = cluster_with_spark(store, config, master=master, parquet=parquet,
                                           work_dir=work_dir, max_rounds=max_rounds)
            if as_json:
                typer.echo(json.dumps(spark_doc, indent=2, default=str))
            else:
                human_console().print(
                    f"clustered {spark_doc['addresses']} addresses into {spark_doc['clusters']} "
                    f"clusters up to height {spark_doc['to_height']} on Spark ({master}, "
                    f"{spark_doc['rounds']} rounds; {spark_doc['links']} links, "
                    f"{spark_doc['coinjoins']} CoinJoins flagged)")
            return
        with _progress(not as_json, "cluster") as update:
            result = Clusterer(store, config).run(on_progress=lambda h, top: update(h + 1, top + 1))
        if result.restarted:
            notes.append(
                f"the configuration differs from the stored clustering's "
                f"({_heuristic_names(before[0] if before else None)}): rebuilt from genesis "
                f"with {_heuristic_names(result.config)}")
        doc: dict[str, object] = {
            "run_id": result.run_id, "from_height": result.from_height,
            "to_height": result.to_height, "block_hash": result.block_hash,
            "addresses": result.addresses, "clusters": result.clusters, "links": result.links,
            "merges": result.merges, "held_back": result.held, "coinjoins": result.coinjoins,
            "restarted": result.restarted, "seconds": round(result.seconds, 3),
            "multi_owner_declared": result.declared,
            "config": result.config, "config_hash": config.digest(), "notes": notes,
        }
        if as_json:
            typer.echo(json.dumps(doc, indent=2, default=str))
            return
        for note in notes:
            human_console().print(note, highlight=False, markup=False)
        if config.is_account:
            human_console().print(
                f"clustered {result.addresses} addresses into {result.clusters} clusters up to "
                f"height {result.to_height} by deposit-address reuse "
                f"({result.config['deposit_addresses']} deposit addresses, {result.links} links, "
                f"{result.merges} merges, {result.held} held back by the guard; hot wallets: "
                f"{', '.join(config.hot_wallets) or 'found by forwards (none named)'})"
            )
        else:
            human_console().print(
                f"clustered {result.addresses} addresses into {result.clusters} clusters up to "
                f"height {result.to_height} ({result.links} links, {result.merges} merges, "
                f"{result.held} held back by the guard, {result.coinjoins} CoinJoins flagged"
                + (f", {result.declared} declared multi-owner transactions left unlinked"
                   if config.multi_owner else "") + ")"
            )


_ACCOUNT_OPTIONS = {"hot_wallet": "--hot-wallet", "hot_wallet_category": "--hot-wallet-category",
                    "max_blocks": "--max-blocks", "max_fee_wei": "--max-fee-wei",
                    "min_deposit_addresses": "--min-deposit-addresses",
                    "max_deposits_per_sender": "--max-deposits-per-sender"}
_SPARK_OPTIONS = {"master": "--master", "parquet": "--parquet", "work_dir": "--work-dir",
                  "max_rounds": "--max-rounds"}
_FLAGS = {**_ACCOUNT_OPTIONS, **_SPARK_OPTIONS, "heuristics": "--heuristics",
          "param": "--param", "guard_size": "--guard-size", "multi_owner": "--multi-owner",
          "no_coinjoin_detection": "--no-coinjoin-detection"}


def _given(ctx: typer.Context) -> set[str]:
    """The command's parameters given on the command line (or by environment), by name."""
    given = set()
    for p in ctx.command.params:
        source = ctx.get_parameter_source(p.name) if p.name else None
        if p.name and source is not None and source.name != "DEFAULT":
            given.add(p.name)
    return given


def _flags(names: set[str]) -> str:
    return ", ".join(sorted(_FLAGS.get(n, n) for n in names))


def _heuristic_names(config: dict[str, Any] | None) -> str:
    """``multi_input v1, change v3`` from a recorded configuration."""
    return heuristic_names(config) if config else "no configuration recorded"


def _account_config(
    config: ClusterConfig, state: AppState, named: list[str], category: str, max_blocks: int,
    max_fee_wei: int, min_deposit_addresses: int, max_deposits_per_sender: int,
) -> ClusterConfig:
    """`config` with the deposit_reuse parameters and hot wallets of an account-chain run."""
    from dataclasses import replace

    from cointrail.analysis.clustering.deposit import DepositParams
    from cointrail.chain.account.address import parse_eth_address
    from cointrail.errors import InputError

    if min(max_blocks, max_fee_wei, min_deposit_addresses, max_deposits_per_sender) < 0:
        raise InputError("the deposit_reuse parameters must be 0 or positive")
    hot = {parse_eth_address(a) for a in named}
    sources = ["--hot-wallet"] if named else []
    if category:
        tagged = _tagged(state, category)
        hot |= tagged
        if tagged:
            sources.append(f"tags with category {category!r}")
    return replace(config, deposit=DepositParams(max_blocks, max_fee_wei,
                                                 min_deposit_addresses, max_deposits_per_sender),
                   hot_wallets=tuple(sorted(hot)), hot_wallets_from=" and ".join(sources))


def _tagged(state: AppState, category: str) -> set[str]:
    """Addresses tagged `category` on this chain in the attribution store (none if absent)."""
    from cointrail.attribution import AttributionStore
    from cointrail.attribution.db import ATTRIBUTION_DB
    from cointrail.chain.account.address import parse_eth_address
    from cointrail.errors import AddressError

    if not (state.settings.store / ATTRIBUTION_DB).exists():
        return set()
    with AttributionStore(state.settings.store, read_only=True) as attribution:
        rows = attribution.con.execute(
            "SELECT DISTINCT address FROM tags WHERE chain = ? AND network = ?"
            " AND lower(category) = lower(?)",
            [state.spec.chain, state.spec.network, category]).fetchall()
    out = set()
    for (text,) in rows:
        try:
            out.add(parse_eth_address(str(text)))
        except AddressError:
            continue  # a malformed tag names no hot wallet
    return out


@show_app.command("cluster")
def show_cluster_cmd(
    ctx: typer.Context,
    cluster_id: Annotated[int, typer.Argument(metavar="ID")],
    offset: Annotated[int, typer.Option(help="First address of the page.")] = 0,
    limit: Annotated[int, typer.Option(help="Addresses per page.")] = 100,
    as_of: AsOf = None,
    case: CaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """A cluster: size, a page of its addresses, balance, first and last seen, its tags."""
    from cointrail.cases.queries import clustered_height, run_cluster

    state = get_state(ctx)
    with handle_errors(state.debug):
        in_case = case_option(state, case)
        if in_case is not None and as_of is None:
            with _open(state, read_only=True) as store:
                as_of = clustered_height(store)  # pinned: the finding replays exactly
        request = {"chain": state.spec.chain, "network": state.spec.network,
                   "cluster_id": cluster_id, "offset": offset, "limit": limit, "as_of": as_of}
        doc = run_cluster(state.settings.store, request)
        if in_case is not None:
            record_query_in_case(in_case, "cluster", "cluster", request, doc,
                                 f"cluster {doc['cluster_id']} as of height {as_of}")
        if as_json:
            _emit(doc, as_json)
        else:
            human_console().print(cluster_text(doc), highlight=False, markup=False)


def cluster_text(doc: dict[str, Any]) -> str:
    """A cluster for people: size and span, amounts, hot wallets recognised, who its tags
    name, the links joining it by heuristic with what each is measured to get wrong, then the
    page of addresses."""
    lines = [f"cluster {doc['cluster_id']} ({doc['chain']} {doc['network']}, as of height "
             f"{doc['as_of_height']}): {doc['size']:,} address(es), seen at heights "
             f"{doc['first_seen_height']}-{doc['last_seen_height']}"]
    if doc.get("merged_into") is not None or doc.get("requested_id") != doc["cluster_id"]:
        lines.append(f"(cluster {doc['requested_id']} was merged into {doc['cluster_id']})")
    if "balance_sat" in doc:
        lines.append(f"balance {doc['balance_sat']:,} sat; received {doc['received_sat']:,}, "
                     f"sent {doc['sent_sat']:,}")
    for asset in doc.get("assets", []):
        lines.append(f"{asset['symbol'] or asset['contract']}: balance {asset['balance']:,}, "
                     f"received {asset['received']:,}, sent {asset['sent']:,} (smallest unit)")
    for hot in doc.get("hot_wallets", []):
        lines.append(f"hot wallet (by behaviour): {hot['address']} sweeps "
                     f"{hot['deposit_addresses']} deposit address(es), since height "
                     f"{hot['since_height']}")
    attribution = doc.get("attribution") or {}
    tags = attribution.get("tags") or []
    if tags:
        labels = sorted({f"{t['label']} ({t['category']})" for t in tags})
        actors = ", ".join(attribution.get("actors") or []) or "no actor"
        lines.append(f"tags: {len(tags)} on its addresses, naming {actors}: "
                     f"{'; '.join(labels[:5])}{' …' if len(labels) > 5 else ''}")
    for conflict in attribution.get("actor_conflict") or []:
        lines.append(f"conflicting actor {conflict['actor']}: tagged on "
                     f"{len(conflict['addresses'])} address(es) of this cluster")
    links = doc.get("links") or []
    if links:
        lines.append("joined by " + ", ".join(
            f"{link['links']:,} {link['heuristic']}"
            + (f" v{link['version']}" if link.get("version") else "") + " link(s)"
            for link in links))
        lines += _method_lines(doc.get("methods"))
    page = doc["addresses"]
    items = page["items"]
    if items:
        first = page["offset"]
        lines.append(f"addresses {first + 1}-{first + len(items)} of {doc['size']:,}:")
        lines += [f"  {item['address']}" for item in items]
    lines.append("(--json for every field; --offset and --limit page the addresses)")
    return "\n".join(lines)


def explain_cmd(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="ADDRESS")],
    b: Annotated[str, typer.Argument(metavar="ADDRESS")],
    as_of: AsOf = None,
    case: CaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Why two addresses share a cluster: each link's txid and heuristic, or that they don't."""
    from cointrail.cases.queries import clustered_height, run_explain

    state = get_state(ctx)
    with handle_errors(state.debug):
        in_case = case_option(state, case)
        if in_case is not None and as_of is None:
            with _open(state, read_only=True) as store:
                as_of = clustered_height(store)  # pinned: the finding replays exactly
        request = {"chain": state.spec.chain, "network": state.spec.network, "a": a, "b": b,
                   "as_of": as_of}
        doc = run_explain(state.settings.store, request)
        if in_case is not None:
            record_query_in_case(in_case, "explain", "explain", request, doc,
                                 f"explain {a} and {b} as of height {as_of}")
        if as_json:
            _emit(doc, as_json)
        else:
            human_console().print(explain_text(doc), highlight=False, markup=False)


def explain_text(doc: dict[str, Any]) -> str:
    """An explanation for people: the answer, then each link with its height, transaction,
    heuristic and what the heuristic's evidence shows, what those heuristics are measured to
    get wrong; the run's heuristics last."""
    lines = [doc["answer"] + "."]
    for k, hop in enumerate(doc.get("path", []), 1):
        version = f" v{hop['heuristic_version']}" if hop.get("heuristic_version") else ""
        lines.append(f"{k}. {hop['from']} -> {hop['to']}")
        lines.append(f"   {hop['heuristic']}{version}, height {hop['height']}, "
                     f"tx {hop['txid']}")
        lines += [f"   {line}" for line in _evidence_lines(hop)]
    lines += _method_lines(doc.get("methods"))
    for held in doc.get("held_back_links", []):
        (a, b), (ca, cb) = held.get("addresses") or ("?", "?"), held.get("clusters") or ("?", "?")
        lines.append(f"held back by the supercluster guard: {held['heuristic']} link in tx "
                     f"{held['txid']} (height {held['height']}) joining {a} (cluster {ca}, "
                     f"{held['sizes'][0]} addresses when held) and {b} (cluster {cb}, "
                     f"{held['sizes'][1]})")
    for declared in doc.get("declared_multi_owner", []):
        lines.append(f"declared multi-owner, so not read as one owner's: tx {declared['txid']} "
                     f"(height {declared['height']}) spends from both clusters (declared in "
                     f"{declared['declared_from']})")
    for wall in doc.get("stonewalls", []):
        lines.append(f"Stonewall-shaped, one owner's (solo) or two owners' (X2), so not read as "
                     f"one owner's: tx {wall['txid']} (height {wall['height']}) spends from "
                     "both clusters (--param multi_input.stonewall_one_owner=true reads "
                     "Stonewalls as solo)")
    names = heuristic_names(doc.get("config"))
    if names:
        lines.append(f"clustering as of height {doc['as_of_height']}: {names} "
                     "(--json for every parameter)")
    return "\n".join(lines)


def _method_lines(methods: dict[str, Any] | None) -> list[str]:
    """The measured accuracy and known errors of the heuristics behind the links, from the
    methodology register."""
    if not methods or not methods.get("heuristics"):
        return []
    register = methods.get("register") or {}
    lines = [f"what these heuristics are measured to get wrong (methodology register "
             f"{register.get('version', '?')}):"]
    for name, m in methods["heuristics"].items():
        version = f" v{m['version']}" if m.get("version") else ""
        if not m.get("registered"):
            lines.append(f"- {name}{version}: {m.get('note', 'not in the register')}")
            continue
        lines.append(f"- {name}{version} ({m['title']}):")
        lines += [f"  {a['measure']}: {a['value']} [{a['source']}]" for a in m["accuracy"]]
        lines.append(f"  known errors: {m['known_errors']}")
        if m.get("note"):
            lines.append(f"  note: {m['note']}")
    return lines


def _evidence_lines(hop: dict[str, Any]) -> list[str]:
    """What a hop's evidence says, in words (nothing for heuristics without evidence)."""
    e = hop.get("evidence") or {}
    kind = e.get("kind")
    if kind == "batch_change":
        fp = e["fingerprint"]
        return [f"the change of batch {e['batch']} ({e['batch_outputs']} outputs, the largest "
                f"{e['change_value_sat']:,} sat), spent as the only input of batch "
                f"{e['spent_by']} ({e['spender_outputs']} outputs)",
                f"same wallet fingerprint: version {fp['version']}, nSequence "
                f"{fp['sequence']}, inputs {fp['input_script_type']}"]
    if kind in ("same_depositor", "payment_change", "deposit_to_hot"):
        what = {"same_depositor": "both paid deposit address",
                "payment_change": "the change of a payment to deposit address",
                "deposit_to_hot": "deposit address and the hot wallet that sweeps it:"}[kind]
        return [f"{what} {e['deposit_address']} (hot wallet {e['hot_wallet']})",
                f"payments {', '.join(e.get('payments') or []) or '-'}; first sweep "
                f"{e['first_forward']}; hot wallet since {e['hot_since']}"]
    if "sweep" in e:  # deposit_reuse on account chains
        return [f"both paid deposit address {e['deposit_address']} (hot wallet "
                f"{e['hot_wallet']}): {e['deposit_a']} and {e['deposit_b']}, swept in "
                f"{e['sweep']}"]
    out = []
    if hop["heuristic"] == "multi_input":
        out.append("both spent inputs of this transaction (common-input ownership)")
    elif hop["heuristic"] == "tx0_outputs":
        out.append("a premix or change output of this Whirlpool Tx0, paid to the wallet that "
                   "spent its inputs")
    change = hop.get("change")
    if change:
        out.append(f"output {change['output']} is the change, named by "
                   f"{', '.join(change['named_by']) or 'a decisive vote'}")
    look = hop.get("second_look")
    if look:
        out.append(f"decided on the second look: the transaction is at height "
                   f"{look['tx_height']}, its last output spent by {look['last_spender']}")
    return out


def stats_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR",
        help="Folder for address_stats/ and cluster_stats/ (Parquet).")],
    engine: Annotated[str, typer.Option(
        "--engine", help="embedded (the store's clustering) or spark (clusters on Spark).")
    ] = "embedded",
    master: SparkMasterOpt = "local[2]",
    parquet: SparkParquetOpt = None,
    work_dir: SparkWorkDirOpt = None,
    as_json: JsonOption = False,
) -> None:
    """Address and cluster statistics (received, sent, balance, counts, first/last seen) for
    every address and cluster, as Parquet: from one SQL text run by DuckDB or by Spark SQL."""
    from cointrail.errors import InputError

    state = get_state(ctx)
    with handle_errors(state.debug):
        if engine not in ("embedded", "spark"):
            raise InputError(f"--engine {engine!r}: use embedded or spark")
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        if store.spec.is_account_model:
            raise InputError("stats covers UTXO chains; on account chains use `show address` "
                             "and `show cluster`")
        if engine == "spark":
            from cointrail.scaleout.jobs import statistics_with_spark

            doc = statistics_with_spark(store, out, master=master, parquet=parquet,
                                        work_dir=work_dir)
        else:
            from cointrail.scaleout.jobs import statistics_embedded

            doc = statistics_embedded(store, out)
    if as_json:
        print_json(json.dumps(doc, indent=2))
    else:
        for name, path in doc["written"].items():
            typer.echo(f"{name}: {path}")
        typer.echo(f"{doc['engine']} engine, height {doc['height']}, {doc['seconds']} s")
