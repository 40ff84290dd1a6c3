"""``cointrail serve`` (REST API and web investigator) and ``cointrail keys`` (API keys)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cointrail.interfaces.cli.common import get_state, handle_errors, human_console

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@keys_app.command("create")
def keys_create_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", metavar="NAME",
                                      help="Who uses the key, as it appears in the audit log.")],
    role: Annotated[str, typer.Option("--role", metavar="ROLE",
                                      help="analyst, approver, auditor or admin.")],
    case: Annotated[list[str] | None, typer.Option(
        "--case", metavar="REF", help="Restrict the key to this case (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it once: it is stored only as a hash."""
    from cointrail.auth.keys import create_key

    state = get_state(ctx)
    with handle_errors(state.debug):
        new = create_key(state.settings.store, name, role, case)
    if as_json:
        typer.echo(json.dumps(new.key.to_dict() | {"secret": new.secret}, indent=2))
        return
    console = human_console()
    scope = ", ".join(new.key.cases) if new.key.cases else "all cases"
    console.print(f"key {new.key.key_id} for {new.key.name} ({new.key.role}, {scope}):")
    typer.echo(new.secret)
    console.print("Keep it now: it is shown only this once. Send it as "
                  "'Authorization: Bearer <key>'.")


@keys_app.command("list")
def keys_list_cmd(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every key (id, name, role, cases, created, revoked); never the secrets."""
    from cointrail.auth.keys import list_keys

    state = get_state(ctx)
    with handle_errors(state.debug):
        keys = list_keys(state.settings.store)
    if as_json:
        typer.echo(json.dumps([k.to_dict() for k in keys], indent=2))
        return
    console = human_console()
    if not keys:
        console.print("no API keys; create one with `cointrail keys create --name N --role R`")
    for k in keys:
        scope = ",".join(k.cases) if k.cases else "all cases"
        status = f"revoked {k.revoked_utc}" if k.revoked_utc else "active"
        console.print(f"{k.key_id}  {k.name}  {k.role}  {scope}  created {k.created_utc}  "
                      f"{status}")


@keys_app.command("revoke")
def keys_revoke_cmd(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (keys list).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: it is refused from the next request on."""
    from cointrail.auth.keys import revoke_key

    state = get_state(ctx)
    with handle_errors(state.debug):
        key = revoke_key(state.settings.store, key_id)
    if as_json:
        typer.echo(json.dumps(key.to_dict(), indent=2))
        return
    human_console().print(f"key {key.key_id} ({key.name}) revoked at {key.revoked_utc}")


def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 unless a reverse "
                                           "proxy with TLS stands in front.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8632,
    cors: Annotated[list[str] | None, typer.Option(
        "--cors", metavar="ORIGIN", help="Allow browser calls from this origin (repeatable); "
                                         "off by default.")] = None,
    rate: Annotated[float, typer.Option(
        help="Requests per second allowed per key (token bucket refill).")] = 20.0,
    burst: Annotated[int, typer.Option(help="Requests a key may send at once.")] = 60,
    max_batch: Annotated[int, typer.Option(
        help="Most addresses in one batch screening request.")] = 10_000,
    no_web: Annotated[bool, typer.Option("--no-web", help="Serve the API only.")] = False,
) -> None:
    """Serve the REST API and the web investigator (http://HOST:PORT/)."""
    import uvicorn

    from cointrail.errors import InputError
    from cointrail.interfaces.api import ApiConfig, create_app

    state = get_state(ctx)
    with handle_errors(state.debug):
        if not 0 < port < 65536:
            raise InputError(f"--port {port} is not a TCP port (1-65535)")
        config = ApiConfig(rate_per_second=rate, burst=burst, max_batch=max_batch,
                           cors_origins=tuple(cors or ()), web=not no_web)
        app = create_app(state.settings, config)
    if host not in ("127.0.0.1", "localhost", "::1"):
        human_console().print(f"[yellow]warning[/yellow]: binding {host}: the API is reachable "
                              "from other machines; put TLS in front of it")
    uvicorn.run(app, host=host, port=port, log_level="warning")
