"""Store commands: ``ingest blkfiles``, ``sync``, ``status``, ``show block|tx|address``."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cointrail.errors import CointrailError, InputError, exit_code_for
from cointrail.interfaces.cli.common import (
    AppState,
    error_line,
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
    from cointrail.store.duck import Store, open_when_free

    root = Store(state.settings.store)
    return open_when_free(
        lambda: root.chain(state.spec, read_only=read_only),
        wait_seconds=state.settings.store_wait,
        writer_of=None if read_only else root.db_path(state.spec),
        on_wait=lambda exc: warning_line(
            f"{exc.in_use}; waiting up to {state.settings.store_wait:g} s for it "
            "(COINTRAIL_STORE_WAIT)"),
    )


def _at_least_one(option: str, value: int) -> None:
    if value < 1:
        raise InputError(f"{option} {value}: must be 1 or more")


class _StopAtBlock(KeyboardInterrupt):
    """Raised from the per-block callback after a Ctrl-C: the ingest stops between blocks."""


class _CtrlC:
    """Ctrl-C (SIGINT) during an ingest, acted on where the store is consistent; exit 130.

    Before the ingestor has added a block no write can be in flight, so KeyboardInterrupt is
    raised at once. After, a Ctrl-C is noted and the ingest stops between two blocks: `sync`
    through its `should_stop`, `ingest blkfiles` through `stop_here` in its per-block callback;
    the blocks added are committed and one line says where the store stands. A
    KeyboardInterrupt at any instant could cut the wait for a background commit short, and the
    ingestor would then close the writer's connection under it. Ctrl-Cs after the first are
    ignored until the command ends."""

    def __init__(self) -> None:
        self.pressed = False
        self.deferred: Callable[[], bool] = lambda: False  # True: wait for a block boundary
        #: the ingestor's tip height, read when the store is released (sync --follow's waits
        #: commit every block first)
        self.height: Callable[[], int] | None = None

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.pressed:
            return
        self.pressed = True
        if not self.deferred():
            raise KeyboardInterrupt

    def should_stop(self) -> bool:
        return self.pressed

    def stop_here(self) -> None:
        if self.pressed:
            raise _StopAtBlock

    @contextmanager
    def watching(self, store: ChainStore) -> Iterator[None]:
        """Take SIGINT while the block runs; after a Ctrl-C, report `store`'s tip, exit 130."""
        ours = (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if ours:
            signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        except KeyboardInterrupt:  # _StopAtBlock included
            self.pressed = True
        finally:
            if ours:  # once interrupted, the command is ending: Ctrl-C stays ignored
                signal.signal(signal.SIGINT,
                              signal.SIG_IGN if self.pressed else signal.default_int_handler)
        if self.pressed:
            if store.released and self.height is not None:  # released: all committed
                height = self.height()
            else:
                tip = store.tip()
                height = tip.height if tip else -1
            where = f"at height {height}" if height >= 0 else "before any block was stored"
            typer.echo(f"interrupted {where} (the store is consistent there); run the same "
                       "command again to resume", err=True)
            raise typer.Exit(130)


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
    empty = result.tip_height < 0  # the store holds no block: no tip (null, as in status)
    doc: dict[str, Any] = {
        "tip_height": None if empty else result.tip_height,
        "tip_hash": None if empty else result.tip_hash,
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
    from cointrail.chain.utxo.blkfile import iter_blk_files
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles

    state = get_state(ctx)
    with handle_errors(state.debug):
        _at_least_one("--batch-txs", batch_txs)
        iter_blk_files(path)  # a wrong path is refused before the store is created
        ctrl_c = _CtrlC()
        with _open(state) as store, ctrl_c.watching(store), \
                UtxoIngestor(store, batch_txs=batch_txs, background_writes=True) as ingestor, \
                _progress(not as_json, "ingest") as update:
            ctrl_c.deferred = lambda: ingestor.blocks_added > 0

            def on_block(height: int) -> None:
                update(height + 1, None)
                ctrl_c.stop_here()

            try:
                result = ingest_blkfiles(ingestor, path, on_block=on_block)
            except _StopAtBlock:
                ingestor.flush()  # stopped between two blocks: every block added is whole
                raise
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
    p2p: Annotated[str | None, typer.Option(
        "--p2p", metavar="[HOST:]PORT",
        help="Raw blocks from the node's P2P port (the node needs -listen=1; HOST defaults to "
             "the --rpc URL's host): the node sends them straight from its block files, the "
             "least work for it and the fastest sync.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Follow a node over JSON-RPC until its tip (and on, --follow): Bitcoin Core-compatible,
    or an Ethereum node with --chain ethereum. Block hashes and control go over JSON-RPC; the
    raw blocks from the node's P2P port with --p2p, else over REST when the node serves it
    (less work on both sides than JSON-RPC), else JSON-RPC."""
    from cointrail.chain.fetch import BlockFetcher, fetch_from_genesis, refuse_two_sources
    from cointrail.chain.p2p import parse_peer
    from cointrail.chain.rpc import RpcClient, parse_node_url
    from cointrail.store.defaults import db_name

    state = get_state(ctx)
    with handle_errors(state.debug):
        _at_least_one("--batch-blocks", batch_blocks)
        _at_least_one("--batch-txs", batch_txs)
        if not (math.isfinite(poll) and poll > 0):
            raise InputError(f"--poll {poll}: must be a positive number of seconds")
        if p2p is not None and state.spec.is_account_model:
            raise InputError(f"--p2p: {state.spec.key} blocks come over JSON-RPC only; "
                             "leave --p2p out")
        refuse_two_sources(p2p, rest)
        peer = (parse_peer(p2p, parse_node_url(rpc).hostname or "127.0.0.1")
                if p2p is not None else None)
    if state.spec.is_account_model:
        _sync_account(state, rpc, follow=follow, poll=poll, batch_blocks=batch_blocks,
                      as_json=as_json)
        return
    with handle_errors(state.debug):
        # a malformed URL or cookie file is refused before the store is created
        client = RpcClient(rpc, timeout=state.settings.rpc_timeout, cookie_file=rpc_cookie)
        # a store without this chain yet starts from the genesis block: the node serves the
        # first blocks while DuckDB and Arrow load and the store is created
        ahead: BlockFetcher | None = None
        if not (state.settings.store / db_name(state.spec)).exists():
            ahead = fetch_from_genesis(client, batch_blocks, rest, peer=peer, spec=state.spec)
        try:
            from cointrail.store.ingest import UtxoIngestor
            from cointrail.store.sync import sync_rpc

            ctrl_c = _CtrlC()
            with client, _open(state) as store, ctrl_c.watching(store), \
                    _progress(not as_json, "sync") as update, \
                    UtxoIngestor(store, batch_txs=batch_txs, background_writes=True) as ingestor:
                ctrl_c.deferred = lambda: ingestor.blocks_added > 0
                ctrl_c.height = lambda: ingestor.height
                result = sync_rpc(  # after a Ctrl-C it stops between blocks and commits them
                    ingestor, client, follow=follow, poll_seconds=poll,
                    batch_blocks=batch_blocks, on_block=lambda h, top: update(h + 1, top + 1),
                    should_stop=ctrl_c.should_stop, rest=rest, on_notice=warning_line,
                    ahead=ahead, p2p=peer,
                )
        finally:
            if ahead is not None:
                ahead.close()
        _report(result, as_json)


def _sync_account(state: AppState, rpc: str, *, follow: bool, poll: float, batch_blocks: int,
                  as_json: bool) -> None:
    """``sync`` for an account-model chain (Ethereum JSON-RPC)."""
    from cointrail.chain.account.node import EthNode
    from cointrail.chain.rpc import RpcClient
    from cointrail.store.ethsync import EthIngestor, sync_eth

    with handle_errors(state.debug):
        client = RpcClient(rpc, timeout=state.settings.rpc_timeout, jsonrpc="2.0")
        ctrl_c = _CtrlC()
        with client, _open(state) as store, ctrl_c.watching(store), \
                _progress(not as_json, "sync") as update:
            ingestor = EthIngestor(store)
            ctrl_c.height = lambda: ingestor.height
            result = sync_eth(  # a Ctrl-C raises at once; should_stop also ends the waits
                ingestor, EthNode(client), follow=follow, poll_seconds=poll,
                batch_blocks=batch_blocks, on_block=lambda h, top: update(h + 1, top + 1),
                should_stop=ctrl_c.should_stop, on_notice=warning_line,
            )
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
    """Chains in the store: heights, tip hash, finality, age of the tip.

    A database that cannot be read is listed with its error, exit code 1;
    one in use by a running ingest is listed too, with a warning."""
    from cointrail.store.defaults import db_name
    from cointrail.store.duck import Store, StoreInUseError
    from cointrail.store.queries import status

    state = get_state(ctx)
    code = 0
    with handle_errors(state.debug):
        root = Store(state.settings.store)
        docs: list[dict[str, Any]] = []
        for spec in root.chains():
            try:
                with root.chain(spec, read_only=True) as store:
                    docs.append(status(store, state.settings.confirmations))
            except CointrailError as exc:
                in_use = isinstance(exc, StoreInUseError)
                if not in_use:
                    code = max(code, exit_code_for(exc))
                (warning_line if in_use else error_line)(str(exc))
                path = root.root / db_name(spec)
                docs.append({"chain": spec.chain, "network": spec.network, "path": str(path),
                             "error": str(exc), **({"in_use": True} if in_use else {})})
        if as_json:
            typer.echo(json.dumps({"store": str(root.root), "chains": docs}, indent=2))
        else:
            _print_status(docs, str(root.root))
    if code:
        raise typer.Exit(code)


def _print_status(docs: list[dict[str, Any]], root: str) -> None:
    console = human_console()
    if not docs:
        console.print(f"The store {root} holds no chain yet.")
    for doc in docs:
        name = f"[bold]{doc['chain']}/{doc['network']}[/bold]"
        if "error" in doc:
            what = "in use by another cointrail process" if doc.get("in_use") else "cannot be read"
            console.print(f"{name}: {what} ({doc['path']})")
        elif doc["tip_height"] is None:
            console.print(f"{name}: no blocks yet")
        else:
            confirmations = doc["confirmations"]
            final = (f"final up to {doc['final_height']} ({confirmations} confirmations)"
                     if doc["final_height"] is not None
                     else f"nothing final yet ({confirmations} confirmations needed)")
            console.print(
                f"{name} tip {doc['tip_height']} {doc['tip_hash']} — {doc['transactions']} "
                f"txs, {final}; the tip is {_age(doc['tip_age_seconds'])} old"
            )


def _age(seconds: int) -> str:
    """A duration for people: 42 s, 7 min, 5 h, 12 days, 16 years."""
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    year = 365.25 * 86400
    if seconds < 2 * year:
        return f"{seconds // 86400} days"
    return f"{int(seconds // year)} years"


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
