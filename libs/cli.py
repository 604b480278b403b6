"""The ``binome`` command.

    binome up                      start every service (embedded Postgres + broker by default)
    binome up --service NAME       start one service alone (one container per service)
    binome migrate                 apply pending SQL migrations of every service
    binome replay SERVICE [NAME]   rebuild read models from the log
    binome token --sub ... --org ... --role hr_admin [--country FR]   mint a dev token
    binome schemas                 write JSON Schema + AsyncAPI from the event models
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import asyncpg
import typer

from libs.auth.devkeys import token as token_command
from libs.events.cli import schemas as schemas_command
from libs.observability.logging import LogFormat, configure_logging
from libs.settings import get_settings

app = typer.Typer(help="Binome: reverse-mentoring programmes, event-sourced.", no_args_is_help=True)
app.command("token", help="Mint a bearer token signed with the local dev key.")(token_command)
app.command("schemas", help="Write JSON Schema for every event and an AsyncAPI document.")(schemas_command)

T = TypeVar("T")


def _services():
    from services import SERVICES

    return SERVICES


def _run(coro_fn: Callable[[], Awaitable[T]], log_format: LogFormat = "auto") -> T:
    configure_logging(log_format)
    return asyncio.run(coro_fn())


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    service: Annotated[
        list[str] | None,
        typer.Option(help="Serve only this service (repeatable); every service by default."),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option(help="Log lines as json, console, or auto: console on a terminal, else json.")
    ] = "auto",
) -> None:
    """Start every service (or the ones named) with its relay and consumers; Ctrl-C stops all."""
    from libs.runtime.platform import select_services, serve

    try:
        services = select_services(_services(), service)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--service") from exc
    settings = get_settings().model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    _run(lambda: serve(settings, services), log_format)


async def _with_pool(fn: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    from libs.runtime.platform import start_infrastructure

    settings = get_settings().model_copy(update={"kafka_bootstrap": "unused"})  # no broker needed
    infrastructure = await start_infrastructure(settings)
    pool = await asyncpg.create_pool(infrastructure.database_url, min_size=1, max_size=4)
    try:
        return await fn(pool)
    finally:
        await pool.close()


@app.command()
def migrate() -> None:
    """Apply pending migrations of every service (also done by ``up``)."""
    from libs.runtime.platform import migrate_all

    _run(lambda: _with_pool(lambda pool: migrate_all(pool, _services(), get_settings().vault_schema)))
    typer.echo("migrations applied")


@app.command()
def replay(
    service: Annotated[str, typer.Argument(help="The service that owns the read model.")],
    name: Annotated[str | None, typer.Argument(help="One projection; all of the service's by default.")] = None,
) -> None:
    """Rebuild read models from the beginning of the log.

    Empties the read model and what it applied, then queues the log of every
    context it reads for publishing again. A running ``binome up`` re-applies
    it at once; otherwise the next ``binome up`` does.
    """
    from libs.runtime.replay import READ_TABLES
    from libs.runtime.replay import replay as do_replay

    rebuilt = _run(lambda: _with_pool(lambda pool: do_replay(pool, get_settings(), _services(), service, name)))
    for projection, queued in rebuilt.items():
        if projection == READ_TABLES:
            typer.echo(f"{projection}: rebuilt from the {queued} events of the log")
        else:
            typer.echo(f"{projection}: emptied; {queued} events queued again from the log")


if __name__ == "__main__":
    app()
