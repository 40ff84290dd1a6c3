"""``cointrail demo``: a whole investigation on bundled data, with no node.

Two bundled chains go into a fresh store:

* the real Bitcoin main chain, blocks 0–438: each block is proved (merkle root, proof of work,
  prev-hash links) and the first bitcoin transfer (block 170) is followed;
* the demo scenario, a Litecoin regtest chain made by a real node (``scripts/make-demo-data.py``):
  victims pay a ransomware operator, who consolidates, peels and deposits at an exchange.

On the scenario the demo clusters, imports the bundled tags (the exchange as an actor with a
jurisdiction; the victims' reported ransom addresses), traces the ransom forward to the exchange
under each taint model, then opens a case with its custody log, writes the report and drafts a
preservation request to the exchange (left for a person with the approver role to approve), and
creates an API key for exploring the store with ``cointrail serve``. Every figure comes from the
store, never from ``facts.json`` (the tests compare the two).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cointrail.errors import InputError
from cointrail.interfaces.cli.common import get_state, handle_errors, human_console, print_json

if TYPE_CHECKING:
    from cointrail.cases import Case
    from cointrail.store.duck import ChainStore

FIRST_TRANSFER_HEIGHT = 170
#: Enough hops for ransom -> consolidation -> every peel hop of the scenario.
TRACE_HOPS = 20
TAINT_MODELS = ("haircut", "poison", "fifo")  # the first is the case's finding
RANSOMWARE = "ransomware"
EXCHANGE = "exchange"
DEFAULT_PORT = 8632  # cointrail serve's default
CASE_REFERENCE = "CT-DEMO-0001"
DEMO_ANALYST = "demo-analyst"
DEMO_APPROVER = "demo-approver"
#: The demo's fictional investigating authority.
CASE_JURISDICTION = "DE"
CASE_AUTHORITY = {
    "name": "Demo Police (fictional)", "unit": "Cybercrime Unit",
    "contact": "+49 000 0000000 (fictional)", "email": "cybercrime@police.example",
    "poc_247": "Demo 24/7 network point of contact (fictional)",
}
#: What the investigator writes in the preservation request (the rest comes from the case,
#: the trace and the contact directory).
REQUEST_FIELDS = {
    "officer_name": "Demo Analyst",
    "officer_rank_id": "Detective Inspector, ID 0000 (fictional)",
    "authorising_authority": "Public Prosecutor's Office (demo)",
    "proportionality": "The accounts received the proceeds of the offence; preservation is the "
                       "least intrusive measure that keeps the account data available.",
    "data_relation": "The account data of the deposit addresses below identify who received "
                     "the ransom payments.",
    "necessity": "Account and log data may be deleted or overwritten in the ordinary course of "
                 "business before a mutual legal assistance request can be executed.",
}

Progress = Callable[[str], None]


def damaged(what: str) -> InputError:
    """The error for bundled data that is not what the demo was built on."""
    return InputError(f"the bundled demo data is damaged: {what}; reinstall cointrail (or "
                      "regenerate the scenario with scripts/make-demo-data.py)")


# -- part 1: the real mainnet blocks -----------------------------------------------------------


def verify_early_mainnet() -> dict[str, Any]:
    """Decode and prove the bundled mainnet blocks 0–438; the first bitcoin transfer."""
    from cointrail.chain.spec import get_chain
    from cointrail.chain.utxo.blkfile import iter_blk_frames
    from cointrail.chain.utxo.block import Block, check_proof_of_work, decode_block
    from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path

    spec = get_chain("bitcoin", "mainnet")
    path = bundled_path(EARLY_MAINNET_BLOCKS)
    started = time.perf_counter()
    blocks: list[Block] = []
    prev = b"\x00" * 32
    for frame in iter_blk_frames(path):
        block = decode_block(frame.raw, spec)
        if block.header.prev_hash != prev:
            raise damaged(f"the mainnet chain breaks at height {len(blocks)}")
        if not (block.merkle_root_valid and check_proof_of_work(block.header, spec)):
            raise damaged(f"block {block.hash} does not verify")
        blocks.append(block)
        prev = block.hash
    elapsed = time.perf_counter() - started
    transfer = blocks[FIRST_TRANSFER_HEIGHT].transactions[1]
    return {
        "chain": spec.key,
        "file": str(path),
        "blocks": len(blocks),
        "transactions": sum(len(b.transactions) for b in blocks),
        "tip_height": len(blocks) - 1,
        "tip_hash": str(blocks[-1].hash),
        "all_merkle_roots_and_pow_verified": True,
        "seconds": round(elapsed, 3),
        "first_transfer": {
            "height": FIRST_TRANSFER_HEIGHT,
            "block_hash": str(blocks[FIRST_TRANSFER_HEIGHT].hash),
            "txid": str(transfer.txid),
            "spends": f"{transfer.inputs[0].prev_txid}:{transfer.inputs[0].prev_vout}",
            "outputs": [
                {"n": o.n, "value_sat": o.value, "address": o.address, "type": o.script_type.value}
                for o in transfer.outputs
            ],
        },
    }


# -- part 2: the investigation on the scenario chain -------------------------------------------


def fresh_store(path: Path | None) -> Path:
    """`path` if it is new or an empty directory, else an InputError; a new temporary
    directory when `path` is None (kept after the demo, so it can be explored)."""
    if path is None:
        return Path(tempfile.mkdtemp(prefix="cointrail-demo-"))
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"the demo needs a fresh store, and {path} is not empty; give a new "
                         "or empty directory with --store, or leave --store out for a "
                         "temporary one")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def _ingest(root: Path, chain: str, network: str, blk: Path) -> dict[str, Any]:
    from cointrail.store.duck import open_chain
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles

    with open_chain(root, chain, network) as store:
        result = ingest_blkfiles(UtxoIngestor(store), str(blk))
    return {"chain": f"{chain}/{network}", "file": str(blk), "blocks": result.blocks,
            "transactions": result.txs, "tip_height": result.tip_height,
            "tip_hash": result.tip_hash}


def _reported(root: Path, category: str, chain: str, network: str) -> list[str]:
    """Addresses tagged with `category` on the chain, in tag order."""
    from cointrail.attribution import AttributionStore

    with AttributionStore(root, read_only=True) as attribution:
        rows = attribution.query(
            "SELECT DISTINCT t.address, min(t.tag_id) FROM tags t JOIN list_versions v"
            " USING (version_id) WHERE v.active AND t.category = ? AND t.chain = ?"
            " AND t.network = ? GROUP BY t.address ORDER BY 2", [category, chain, network])
    return [str(a) for a, _ in rows]


def _clusters_of(store: ChainStore, addresses: list[str]) -> list[int]:
    """The distinct clusters of `addresses`, in the order of their first address."""
    from cointrail.analysis.clustering.engine import cluster_view

    view = cluster_view(store)
    found: dict[int, None] = {}
    for address in addresses:
        rows = store.query("SELECT addr_id FROM addresses WHERE text = ?", [address])
        if not rows:
            continue
        cluster = view.of(int(rows[0][0]))
        if cluster is not None:
            found.setdefault(cluster)
    return list(found)


def _ransom_payments(store: ChainStore, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The seed outputs of a forward trace (what the operator received), each with the cluster
    of the transaction's first input: the victim."""
    from cointrail.analysis.clustering.engine import cluster_view

    view = cluster_view(store)
    payments = []
    for node in result["nodes"]:
        if not node["seed"]:
            continue
        payer = store.query(
            "SELECT i.addr_id FROM inputs i JOIN txs t USING (tx_id) WHERE t.txid = ?"
            " ORDER BY i.n LIMIT 1", [bytes.fromhex(node["txid"])[::-1]])
        addr_id = None if not payer or payer[0][0] is None else int(payer[0][0])
        victim = None if addr_id is None else view.of(addr_id)
        payments.append({"txid": node["txid"], "vout": node["vout"], "address": node["address"],
                         "value_sat": node["value_sat"], "height": node["height"],
                         "victim_cluster": None if victim is None else f"cluster:{victim}"})
    return sorted(payments, key=lambda p: (p["height"], p["txid"], p["vout"]))


def trace_request(chain: str, network: str, start: str, model: str) -> dict[str, Any]:
    """A forward trace as a case records it (as ``trace --case`` does): every input explicit,
    so ``case replay`` re-runs it."""
    from cointrail.analysis.tracing import TaintModel, TraceParams

    params = TraceParams(model=TaintModel(model), hops=TRACE_HOPS)
    return {"chain": chain, "network": network, "direction": "forward", "start": start,
            "model": params.model.value, "hops": params.hops, "min_value": params.min_value,
            "since": None, "until": None, "coinjoin": params.coinjoin,
            "stop_at": sorted(params.stop_categories),
            "stop_sanctioned": params.stop_sanctioned, "clusters": params.clusters}


def _endpoint_sum(result: dict[str, Any], category: str) -> int:
    return int(result["endpoints"].get(category, {}).get("amount_sat", 0))


def investigate(root: Path, progress: Progress) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ingest, cluster, import the tags and trace the scenario's ransom forward; returns the
    figures and what the case records (acquisitions, the clustering run, the traces)."""
    from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer
    from cointrail.attribution import AttributionStore, import_tags
    from cointrail.cases.queries import run_trace
    from cointrail.data import SCENARIO_BLOCKS, SCENARIO_CHAIN, SCENARIO_TAGS, bundled_path
    from cointrail.store.duck import open_chain

    chain, network = SCENARIO_CHAIN
    progress("ingest the scenario chain")
    ingested = _ingest(root, chain, network, bundled_path(SCENARIO_BLOCKS))
    progress("cluster addresses (multi-input, CoinJoins detected and skipped)")
    config = ClusterConfig()
    with open_chain(root, chain, network) as store:
        run = Clusterer(store, config).run()
    progress("import the tags (exchange actor, reported ransom addresses)")
    with AttributionStore(root) as attribution:
        report = import_tags(attribution, [bundled_path(SCENARIO_TAGS)])
    rejected = sum(f.rejected for f in report.files)
    if rejected:
        raise damaged(f"tags were rejected: {report.as_dict()}")
    reported = _reported(root, RANSOMWARE, chain, network)
    with open_chain(root, chain, network, read_only=True) as store:
        clusters = _clusters_of(store, reported)
    if len(clusters) != 1:
        raise damaged(f"the reported ransom addresses fall in {len(clusters)} clusters, "
                      "not one")
    start = f"cluster:{clusters[0]}"
    requests = {m: trace_request(chain, network, start, m) for m in TAINT_MODELS}
    traces: dict[str, dict[str, Any]] = {}
    for model in TAINT_MODELS:
        progress(f"trace the ransom forward ({model})")
        traces[model] = run_trace(root, requests[model])
    main = traces[TAINT_MODELS[0]]
    with open_chain(root, chain, network, read_only=True) as store:
        payments = _ransom_payments(store, main)
    deposits: dict[str, int] = {}
    labels: set[str] = set()
    for out in main["endpoints"].get(EXCHANGE, {}).get("outputs", []):
        if out["address"] is not None:
            deposits[out["address"]] = deposits.get(out["address"], 0) + int(out["amount_sat"])
            labels.add(out["label"] or "")
    figures = {
        "ingested": ingested,
        "clustering": {"addresses": run.addresses, "clusters": run.clusters,
                       "coinjoins": run.coinjoins, "to_height": run.to_height},
        "tags": {"files": [Path(f.path).name for f in report.files],
                 "records": sum(f.records for f in report.files)},
        "reported_ransom_addresses": reported,
        "trace_start": start,
        "trace_hops": TRACE_HOPS,
        "victims": len({p["victim_cluster"] for p in payments}),
        "ransom_payments": payments,
        "total_ransom_sat": int(main["seed_amount_sat"]),
        "reaching_exchange_sat": {m: _endpoint_sum(t, EXCHANGE) for m, t in traces.items()},
        "fees_sat": _endpoint_sum(main, "fee"),
        "exchange_labels": sorted(labels),
        "deposit_addresses": [{"address": a, "amount_sat": v} for a, v in sorted(deposits.items())],
    }
    evidence = {
        "chain": chain, "network": network, "cluster_id": clusters[0],
        "blocks": bundled_path(SCENARIO_BLOCKS),
        "tag_files": [Path(f.path) for f in report.files],
        "cluster_run": {"run_id": run.run_id, "to_height": run.to_height,
                        "block_hash": run.block_hash, "config": config.describe()},
        "request": requests[TAINT_MODELS[0]], "trace": main,
    }
    return figures, evidence


# -- the case: custody log, finding, report, preservation request ------------------------------


def _file_entry(path: Path) -> dict[str, Any]:
    from cointrail.cases import sha256_hex

    data = path.read_bytes()
    return {"path": str(path), "name": path.name, "size": len(data), "sha256": sha256_hex(data)}


def _case_facts(figures: dict[str, Any]) -> str:
    heights = [p["height"] for p in figures["ransom_payments"]]
    return (f"{figures['victims']} victims of a ransomware attack paid ransoms totalling "
            f"{_sat(figures['total_ransom_sat'])} LTC between blocks {min(heights)} and "
            f"{max(heights)} to addresses they reported. The operator consolidated the ransoms "
            "and moved them on in a peel chain to deposit addresses at an exchange.")


def write_report(case: Case) -> list[str]:
    """The case report, written as ``cointrail case report`` writes it; returns the HTML and
    PDF paths inside the case."""
    from cointrail.reporting.casefile import write_case_report

    report = write_case_report(case)
    return [report.html_path, report.pdf_path]


def open_case(root: Path, figures: dict[str, Any], evidence: dict[str, Any],
              progress: Progress) -> dict[str, Any]:
    """Open the demo case, log what was acquired, keep the trace as a finding, write the report
    and draft a preservation request to the exchange the trace reached."""
    from cointrail.auth import Principal, Role
    from cointrail.cases import CaseStore
    from cointrail.data import SCENARIO_CONTACTS, bundled_path
    from cointrail.legal.contacts import import_contacts
    from cointrail.legal.drafting import draft_request

    analyst = Principal(DEMO_ANALYST, Role.ANALYST)
    progress(f"open case {CASE_REFERENCE} with its custody log")
    case = CaseStore.for_store(root).create(
        analyst, reference=CASE_REFERENCE, title="Ransomware payments traced to an exchange "
        "(demo)", offence="UNCC-9", jurisdiction=CASE_JURISDICTION, authority=CASE_AUTHORITY,
        investigators=[DEMO_ANALYST], facts=_case_facts(figures),
        legal_basis="Code of Criminal Procedure, preservation of stored data (demo)",
        purpose="Identify the holders of the exchange accounts that received the ransom.",
        retention_days=3650, tlp="amber",
        national_law="Criminal Code, interference with data (demo)", max_penalty_years=5,
        chain=evidence["chain"], network=evidence["network"])
    blocks = _file_entry(evidence["blocks"])
    case.log("acquire.file", f"bundled scenario chain {blocks['name']}", parameters=blocks,
             result_sha256=blocks["sha256"])
    case.log("acquire.tags", "bundled scenario tags", parameters={
        "files": [_file_entry(p) for p in evidence["tag_files"]]})
    case.log("query.cluster", "address clustering of the scenario chain",
             parameters=evidence["cluster_run"])
    for address in figures["reported_ransom_addresses"]:
        case.attach_address(address, note="ransom payment address reported by a victim")
    case.attach_cluster(evidence["cluster_id"], note="the operator's cluster (multi-input)")
    finding = case.record_query("trace", "trace", evidence["request"], evidence["trace"],
                                record=evidence["trace"]["record"],
                                what="forward trace of the ransom to the exchange")
    progress("write the case report (HTML, PDF)")
    report = write_report(case)
    progress("draft a preservation request to the exchange")
    contacts = bundled_path(SCENARIO_CONTACTS)
    import_contacts(root, contacts)
    entry = _file_entry(contacts)
    case.log("acquire.file", f"contact directory {entry['name']}", parameters=entry,
             result_sha256=entry["sha256"])
    request = draft_request(case, "preservation", finding.id, figures["exchange_labels"][0],
                            REQUEST_FIELDS, store_root=root)
    verified = case.verify()
    head = case.head()
    return {
        "reference": case.reference,
        "folder": str(case.folder),
        "finding": finding.id,
        "custody_entries": head.seq,
        "custody_head": head.hash,
        "custody_verified": verified.ok,
        "report": [str(case.folder / path) for path in report],
        "request": {"id": request["id"], "kind": request["kind"], "status": request["status"],
                    "addressee": request["fields"]["legal_entity"],
                    "country": request["fields"]["legal_entity_country"],
                    "le_contact": request["fields"]["le_contact"],
                    "files": [str(case.folder / f["path"]) for f in request["files"].values()]
                    + [str(case.folder / "requests" / request["id"] / "request.json")]},
    }


def create_demo_key(root: Path) -> dict[str, Any]:
    """An API key for exploring the demo store in the web investigator."""
    from cointrail.auth.keys import create_key

    new = create_key(root, DEMO_APPROVER, "approver", None)
    return {"key_id": new.key.key_id, "name": new.key.name, "role": str(new.key.role),
            "secret": new.secret}


# -- the command -------------------------------------------------------------------------------


def run_demo(store: Path | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """The whole demo; returns the figures `cointrail demo --json` prints."""
    say = progress or (lambda _step: None)
    started = time.perf_counter()
    root = fresh_store(store)
    say("prove the bundled Bitcoin blocks 0-438")
    mainnet = verify_early_mainnet()
    say("ingest the bundled Bitcoin blocks 0-438")
    mainnet["ingested"] = _ingest(root, "bitcoin", "mainnet", Path(mainnet["file"]))
    figures, evidence = investigate(root, say)
    case = open_case(root, figures, evidence, say)
    key = create_demo_key(root)
    say("done")
    return {
        "store": str(root),
        "mainnet": mainnet,
        "scenario": figures,
        "case": case,
        "files": [*case["report"], *case["request"]["files"]],
        "explore": explore_hint(root, key),
        "seconds": round(time.perf_counter() - started, 3),
    }


def explore_hint(root: Path, key: dict[str, Any]) -> dict[str, Any]:
    return {
        "commands": [f"cointrail --store {root} serve"],
        "url": f"http://127.0.0.1:{DEFAULT_PORT}/",
        "api_key": key,
    }


@contextmanager
def _progress_lines(enabled: bool) -> Iterator[Progress]:
    """One line per step on stderr (human mode only), with the seconds since the start."""
    if not enabled:
        yield lambda _step: None
        return
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    clock = [time.perf_counter()]

    def step(text: str) -> None:
        now = time.perf_counter()
        more = "" if text == "done" else " …"
        console.print(f"[dim]{now - clock[0]:5.1f} s[/dim]  {text}{more}")

    yield step


def demo(
    ctx: typer.Context,
    store: Annotated[Path | None, typer.Option(
        "--store", metavar="DIR",
        help="A new or empty directory for the demo's store (default: a new temporary "
             "directory, kept for exploring).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Run a whole investigation on bundled data: prove Bitcoin's first 439 blocks; trace a
    ransomware operator's takings to an exchange, open a case, write its report and draft a
    preservation request, on a bundled scenario chain."""
    state = get_state(ctx)
    parent = ctx.parent.params.get("store") if ctx.parent is not None else None
    with handle_errors(state.debug), _progress_lines(not json_output) as progress:
        result = run_demo(store or parent, progress)
    if json_output:
        print_json(json.dumps(result, indent=2))
        return
    _print_summary(result)


def _sat(value: int) -> str:
    return f"{value // 100_000_000}.{value % 100_000_000:08d}"


def _print_summary(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = human_console()
    main = result["mainnet"]
    first = main["first_transfer"]
    console.print(
        f"\n[bold]1. Real data[/bold] — {main['blocks']} real {main['chain']} blocks, "
        f"{main['transactions']} transactions decoded and proved (merkle roots, proof of work, "
        f"links). The first bitcoin transfer, block {first['height']}, tx {first['txid']}:")
    table = Table()
    table.add_column("output")
    table.add_column("BTC", justify="right")
    table.add_column("address (p2pk attributed to its p2pkh address)")
    for out in first["outputs"]:
        table.add_row(str(out["n"]), _sat(out["value_sat"]), str(out["address"]))
    console.print(table)
    s = result["scenario"]
    console.print(
        f"\n[bold]2. A ransomware case[/bold] — scenario chain ({s['ingested']['chain']}, "
        f"{s['ingested']['blocks']} blocks, {s['ingested']['transactions']} transactions), "
        f"{s['clustering']['addresses']} addresses in {s['clustering']['clusters']} clusters, "
        f"{s['clustering']['coinjoins']} CoinJoins flagged.")
    console.print(f"  victims: {s['victims']} (ransom payments to the operator's cluster "
                  f"{s['trace_start']})")
    console.print(f"  total ransom: {_sat(s['total_ransom_sat'])} LTC "
                  f"({s['total_ransom_sat']} sat)")
    reach = s["reaching_exchange_sat"]
    console.print("  reaching the exchange: " + ", ".join(
        f"{m} {_sat(v)} LTC" for m, v in reach.items()) + f" (fees {s['fees_sat']} sat)")
    console.print(f"  exchange: {', '.join(s['exchange_labels'])}; deposit addresses:")
    for d in s["deposit_addresses"]:
        console.print(f"    {d['address']}  {_sat(d['amount_sat'])} LTC")
    c = result["case"]
    r = c["request"]
    console.print(
        f"\n[bold]3. The case[/bold] — {c['reference']}: trace kept as finding {c['finding']}, "
        f"{c['custody_entries']} custody entries (hash-chained, verified: "
        f"{'yes' if c['custody_verified'] else 'NO'}); preservation request {r['id']} "
        f"drafted to {r['addressee']} ({r['country']}, {r['le_contact']}), status {r['status']}: "
        "a person with the approver role must approve it, and people send it.")
    console.print("[bold]Files written[/bold]:")
    for f in result["files"]:
        console.print(f"  {f}")
    key = result["explore"]["api_key"]
    console.print(f"\n[bold]Store[/bold]: {result['store']} (ran in {result['seconds']} s)")
    console.print("[bold]Explore it[/bold]:")
    for command in result["explore"]["commands"]:
        console.print(f"  {command}")
    console.print(f"  then open {result['explore']['url']} with the API key "
                  f"({key['name']}, {key['role']}; shown only here):")
    console.print(f"  {key['secret']}", soft_wrap=True)
