"""Store commands: ``ingest blkfiles``, ``sync``, ``status``, ``show block|tx|address``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cointrail.interfaces.cli.common import (
    AppState,
    get_state,
    handle_errors,
    human_console,
    warning_line,
)
from cointrail.store.defaults import DEFAULT_BATCH_TXS

if TYPE_CHECKING:  # the store's libraries load on first use: `cointrail --help` stays fast
    from cointrail.store.duck import ChainStore
    from cointrail.store.sync import SyncResult

ingest_app = typer.Typer(help="Ingest a chain into the store from files.", no_args_is_help=True)
show_app = typer.Typer(help="Show a block, transaction or address from the store.",
                       no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _open(state: AppState, *, read_only: bool = False) -> ChainStore:
    from cointrail.store.duck import Store

    return Store(state.settings.store).chain(state.spec, read_only=read_only)


def _emit(document: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    console = human_console()
    for key, value in document.items():
        if isinstance(value, list):
            console.print(f"[bold]{key}[/bold]: {len(value)} entries")
            for item in value[:20]:
                console.print(f"  {item}")
            if len(value) > 20:
                console.print(f"  … {len(value) - 20} more (use --json for all)")
        else:
            console.print(f"[bold]{key}[/bold]: {value}")


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on a terminal; silent in --json mode or when stderr is not a TTY."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _report(result: SyncResult, as_json: bool) -> None:
    doc: dict[str, Any] = {
        "tip_height": result.tip_height,
        "tip_hash": result.tip_hash,
        "blocks_added": result.blocks,
        "transactions_added": result.txs,
        "reorgs": result.reorgs,
        "blocks_rolled_back": result.blocks_rolled_back,
        "seconds": round(result.seconds, 3),
        "warnings": result.warnings,
    }
    if result.fetch:
        doc["blocks_fetched_over"] = result.fetch
    for warning in result.warnings:
        warning_line(warning)
    _emit(doc, as_json)


@ingest_app.command("blkfiles")
def ingest_blkfiles_cmd(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(metavar="DIR|FILE",
                                        help="A node's blocks/ directory or a framed .blk file.")],
    batch_txs: Annotated[int, typer.Option(
        help="Transactions per committed batch.")] = DEFAULT_BATCH_TXS,
    as_json: JsonOption = False,
) -> None:
    """Ingest the best chain from a node's blk*.dat files (xor.dat aware); resumable."""
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles

    state = get_state(ctx)
    with handle_errors(state.debug), _open(state) as store:
        with UtxoIngestor(store, batch_txs=batch_txs, background_writes=True) as ingestor, \
                _progress(not as_json, "ingest") as update:
            result = ingest_blkfiles(ingestor, path, on_block=lambda h: update(h + 1, None))
        _report(result, as_json)


def sync_cmd(
    ctx: typer.Context,
    rpc: Annotated[str, typer.Option("--rpc", metavar="URL",
                                     help="Node JSON-RPC URL, e.g. http://user:pass@127.0.0.1:8332/")],
    follow: Annotated[bool, typer.Option("--follow", help="Keep following new blocks.")] = False,
    rpc_cookie: Annotated[str | None, typer.Option(help="Core's .cookie file for auth.")] = None,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --follow.")] = 1.0,
    batch_blocks: Annotated[int, typer.Option(help="Blocks per RPC batch.")] = 100,
    batch_txs: Annotated[int, typer.Option(
        help="Transactions per committed batch.")] = DEFAULT_BATCH_TXS,
    rest: Annotated[bool | None, typer.Option(
        "--rest/--no-rest",
        help="Raw blocks over the node's REST interface (binary; the node needs -rest=1). "
             "Default: REST when the node serves it, else JSON-RPC.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Follow a node over JSON-RPC until its tip (and on, --follow): Bitcoin Core-compatible,
    or an Ethereum node with --chain ethereum. Block hashes and control go over JSON-RPC; the
    raw blocks over REST when the node serves it (less work on both sides), else JSON-RPC."""
    from cointrail.chain.rpc import RpcClient
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import sync_rpc

    state = get_state(ctx)
    if state.spec.is_account_model:
        _sync_account(state, rpc, follow=follow, poll=poll, batch_blocks=batch_blocks,
                      as_json=as_json)
        return
    with handle_errors(state.debug), _open(state) as store:
        client = RpcClient(rpc, timeout=state.settings.rpc_timeout, cookie_file=rpc_cookie)
        with client, _progress(not as_json, "sync") as update, \
                UtxoIngestor(store, batch_txs=batch_txs, background_writes=True) as ingestor:
            try:
                result = sync_rpc(
                    ingestor, client, follow=follow, poll_seconds=poll,
                    batch_blocks=batch_blocks, on_block=lambda h, top: update(h + 1, top + 1),
                    rest=rest,
                )
            except KeyboardInterrupt:
                ingestor.flush()
                raise typer.Exit(130) from None
        _report(result, as_json)


def _sync_account(state: AppState, rpc: str, *, follow: bool, poll: float, batch_blocks: int,
                  as_json: bool) -> None:
    """``sync`` for an account-model chain (Ethereum JSON-RPC)."""
    from cointrail.chain.account.node import EthNode
    from cointrail.chain.rpc import RpcClient
    from cointrail.store.ethsync import EthIngestor, sync_eth

    with handle_errors(state.debug), _open(state) as store:
        client = RpcClient(rpc, timeout=state.settings.rpc_timeout, jsonrpc="2.0")
        with client, _progress(not as_json, "sync") as update:
            ingestor = EthIngestor(store)
            try:
                result = sync_eth(
                    ingestor, EthNode(client), follow=follow, poll_seconds=poll,
                    batch_blocks=batch_blocks, on_block=lambda h, top: update(h + 1, top + 1),
                )
            except KeyboardInterrupt:
                ingestor.flush()
                raise typer.Exit(130) from None
        for warning in result.warnings:
            warning_line(warning)
        _emit({
            "tip_height": result.tip_height, "tip_hash": result.tip_hash,
            "blocks_added": result.blocks, "transactions_added": result.txs,
            "transfers_added": ingestor.transfers_added, "traces": ingestor.tracer_note,
            "reorgs": result.reorgs, "blocks_rolled_back": result.blocks_rolled_back,
            "seconds": round(result.seconds, 3), "warnings": result.warnings,
        }, as_json)


def status_cmd(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Chains in the store: heights, tip hash, finality, age of the tip."""
    from cointrail.store.duck import Store
    from cointrail.store.queries import status

    state = get_state(ctx)
    with handle_errors(state.debug):
        root = Store(state.settings.store)
        docs = []
        for spec in root.chains():
            with root.chain(spec, read_only=True) as store:
                docs.append(status(store, state.settings.confirmations))
        if as_json:
            typer.echo(json.dumps({"store": str(root.root), "chains": docs}, indent=2))
            return
        console = human_console()
        if not docs:
            console.print(f"The store {root.root} holds no chain yet.")
        for doc in docs:
            console.print(
                f"[bold]{doc['chain']}/{doc['network']}[/bold] tip {doc['tip_height']} "
                f"{doc['tip_hash']} — {doc['transactions']} txs, final up to "
                f"{doc['final_height']} ({doc['confirmations']} confirmations)"
            )


@show_app.command("block")
def show_block_cmd(ctx: typer.Context, ident: Annotated[str, typer.Argument(metavar="HEIGHT|HASH")],
                   as_json: JsonOption = False) -> None:
    """A block by height or hash."""
    from cointrail.store.queries import show_block

    state = get_state(ctx)
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        _emit(show_block(store, ident), as_json)


@show_app.command("tx")
def show_tx_cmd(ctx: typer.Context, txid: Annotated[str, typer.Argument(metavar="TXID")],
                as_json: JsonOption = False) -> None:
    """A transaction: inputs resolved with value and address, outputs with their spender."""
    from cointrail.store.queries import show_tx

    state = get_state(ctx)
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        _emit(show_tx(store, txid), as_json)


@show_app.command("address")
def show_address_cmd(ctx: typer.Context, address: Annotated[str, typer.Argument(metavar="ADDR")],
                     as_json: JsonOption = False) -> None:
    """An address: balance, received, sent, transaction count, first and last seen."""
    from cointrail.analysis.clustering.engine import address_cluster
    from cointrail.store.queries import show_address

    state = get_state(ctx)
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        doc = show_address(store, address)
        cluster = address_cluster(store, doc["addr_id"])
        doc["cluster"] = cluster  # None until `cointrail cluster` has run
        _emit(doc, as_json)
