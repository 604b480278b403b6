"""The ``binome`` command.

    binome up                      start every service (embedded Postgres + broker by default)
    binome up --service NAME       start one service alone (one container per service)
    binome migrate                 apply pending SQL migrations of every service
    binome replay SERVICE [NAME]   rebuild read models from the log
    binome redrive CONSUMER [--event ID | --all]   apply parked (dead-lettered) events again
    binome token --sub ... --org ... --role hr_admin [--country FR]   mint a dev token
    binome schemas                 write JSON Schema + AsyncAPI from the event models
    binome events [--json]         each event type -> its producer -> its inline projector and consumers (and method)
    binome demo                    drive a multinational rollout through the HTTP APIs of `binome up`
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

# Only what every command needs is imported here: a command imports the rest
# when it runs, so that `binome token` answers at once (no event models, no
# database driver, no logging setup).
from libs.auth.devkeys import token as token_command
from libs.settings import LogFormat, Settings, get_settings

if TYPE_CHECKING:
    import asyncpg

app = typer.Typer(help="Binome: reverse-mentoring programmes, event-sourced.", no_args_is_help=True)
app.command("token", help="Mint a bearer token signed with the local dev key.")(token_command)

T = TypeVar("T")


def _services():
    from services import SERVICES

    return SERVICES


def _run(
    coro_fn: Callable[[], Coroutine[Any, Any, T]], log_format: LogFormat = "auto", *, uvloop: bool = False
) -> T:
    from libs.embedded import EmbeddedStackMissing
    from libs.observability.logging import configure_logging
    from libs.runtime import loop

    configure_logging(log_format)
    try:
        # Only the long-running server is worth uvloop's start-up; one-shot commands keep asyncio's loop.
        return loop.run(coro_fn()) if uvloop else asyncio.run(coro_fn())
    except EmbeddedStackMissing as exc:
        typer.echo(f"binome: {exc}", err=True)
        raise typer.Exit(2) from None


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
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="HTTP worker processes on the one port (default: BINOME_WORKERS, else one per core); "
            "relays, consumers and schedulers run once, in the parent.",
        ),
    ] = None,
) -> None:
    """Start every service (or the ones named) with its relay and consumers; Ctrl-C stops all."""
    settings = get_settings().model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    workers = workers or settings.workers or os.cpu_count() or 1
    if workers > 1:
        # Before prometheus-client is imported (by the platform): it chooses
        # its multiprocess mode from the environment at import time.
        from libs.runtime.run_dir import prepare_run_dir

        prepare_run_dir(settings.data_dir)
    from libs.runtime.platform import select_services, serve

    try:
        services = select_services(_services(), service)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--service") from exc
    _refuse_without_master_keys(settings)
    _run(lambda: serve(settings, services, workers=workers, log_format=log_format), log_format, uvloop=True)


def _refuse_without_master_keys(settings: Settings) -> None:
    """Outside dev mode the vault's master keys come from the operator, never
    from the data dir (libs/gdpr/masters.py): say so and stop before serving."""
    from libs.gdpr.masters import MasterKeys, MasterKeysMissing

    try:
        MasterKeys.from_settings(settings)
    except MasterKeysMissing as exc:
        typer.echo(f"binome up refused to start: {exc}", err=True)
        raise typer.Exit(2) from None


async def _with_pool(fn: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    return await _with_database(lambda pool, _url: fn(pool))


async def _with_database(fn: Callable[[asyncpg.Pool, str], Awaitable[T]]) -> T:
    """``fn(pool, url)`` on the platform's database (the embedded one started for the command if need be)."""
    from libs.database import create_pool
    from libs.runtime.platform import start_infrastructure

    settings = get_settings().model_copy(update={"kafka_bootstrap": "unused"})  # no broker needed
    infrastructure = await start_infrastructure(settings)
    try:
        pool = await create_pool(infrastructure.database_url, min_size=1, max_size=4)
        try:
            return await fn(pool, infrastructure.database_url)
        finally:
            await pool.close()
    finally:
        infrastructure.close()  # the embedded server, if this command started one


@app.command()
def migrate() -> None:
    """Apply pending migrations of every service (also done by ``up``)."""
    from libs.runtime.platform import migrate_all, vault_pool_scope

    async def migrate_everything(pool: asyncpg.Pool) -> None:
        settings = get_settings()
        async with vault_pool_scope(settings, pool) as vault_pool:
            await migrate_all(pool, _services(), settings.vault_schema, vault_pool)

    _run(lambda: _with_pool(migrate_everything))
    typer.echo("migrations applied")


@app.command()
def replay(
    service: Annotated[str, typer.Argument(help="The service that owns the read model.")],
    name: Annotated[str | None, typer.Argument(help="One projection; all of the service's by default.")] = None,
    # The replayer's BATCH_SIZE, written out: importing it here would load asyncpg
    # for every command (tests/unit/test_replay_defaults.py keeps them equal).
    batch_size: Annotated[int, typer.Option(min=1, max=50_000, help="Events applied per transaction.")] = 5000,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Processes to split the log among, by stream (insights; others use one).")] = 1,
) -> None:
    """Rebuild read models from the beginning of the log.

    Empties the read model and what it applied, then reads the event store of
    every context it consumes and applies it in batches, with a progress bar.
    Publishes nothing; safe while ``binome up`` runs (its live consumer and
    the replay never apply an event twice). ``--workers 2`` uses both cores
    for a large log (each process costs a second or more to start).
    """
    from libs.runtime.heap import freeze_startup_heap
    from libs.runtime.replay import replay as do_replay
    from libs.runtime.replay_progress import replay_progress, summary

    _services()  # imported before the freeze: the collector then skips them
    freeze_startup_heap()
    with replay_progress() as progress:
        rebuilt = _run(lambda: _with_database(
            lambda pool, url: do_replay(pool, get_settings(), _services(), service, name, progress=progress,
                                        batch_size=batch_size, workers=workers, database_url=url)
        ))
    for line in summary(rebuilt):
        typer.echo(line)


@app.command()
def redrive(
    consumer: Annotated[str, typer.Argument(help="The projection (consumer) that parked the events.")],
    event: Annotated[uuid.UUID | None, typer.Option("--event", help="Redrive this event only.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Redrive every event the consumer parked.")] = False,
) -> None:
    """Apply parked (dead-lettered) events again through their projection.

    An event that applies now leaves the dead letters; one that fails again
    stays, with one more attempt and the new reason. Exits 1 if any failed.
    """
    from libs.runtime.redrive import redrive as do_redrive
    from libs.runtime.replay import UnknownReadModel

    if (event is None) == (not all_):
        raise typer.BadParameter("give either --event ID or --all", param_hint="--event / --all")
    try:
        results = _run(lambda: _with_pool(lambda pool: do_redrive(pool, get_settings(), _services(), consumer, event)))
    except UnknownReadModel as exc:
        raise typer.BadParameter(str(exc), param_hint="CONSUMER") from None
    if not results:
        typer.echo(f"{consumer}: no dead letter{f' for event {event}' if event else ''}")
        raise typer.Exit(1 if event else 0)
    for result in results:
        what = result.event_id or f"record #{result.id} (undecodable)"
        typer.echo(f"{what}: {result.outcome}" + (f" (attempt {result.attempts}: {result.reason})" if result.reason else ""))
    if any(r.outcome == "failed" for r in results):
        raise typer.Exit(1)


@app.command()
def schemas(
    out: Annotated[
        Path,
        typer.Option(help="Directory for asyncapi.json and events/<type>.schema.json."),
    ] = Path("docs/events"),
) -> None:
    """Write JSON Schema for every event and an AsyncAPI document (what each
    service's consumers receive included)."""
    from libs.events.schemagen import write_all
    from libs.runtime.catalog import consumers_by_service

    written = write_all(out, consumers=consumers_by_service(_services()))
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(written)} files in {out}")


@app.command()
def events(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of a table.")] = False,
) -> None:
    """Each event type, the service that produces it and the consumers that
    handle it (with the method), read from the code."""
    import libs.events.contexts  # noqa: F401  (registers every event type)
    from libs.events.registry import registry
    from libs.runtime.catalog import routes

    found = routes(_services(), registry)
    if as_json:
        import orjson

        typer.echo(orjson.dumps([r.as_json() for r in found], option=orjson.OPT_INDENT_2).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("event type", "producer", "consumers (service: consumer -> method)")
    for route in found:
        handled = "\n".join(
            f"{c.service}: {c.consumer}{' (inline)' if c.kind == 'inline' else ''} -> {c.method}"
            for c in route.consumers
        ) or "-"
        table.add_row(route.type, route.producer or "-", handled)
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # piped: no wrapping at 80


@app.command()
def demo(
    base_url: Annotated[str, typer.Option(help="The platform (`binome up`).")] = "http://127.0.0.1:8000",
    seed: Annotated[int, typer.Option(help="Same seed, same world and same story.")] = 7,
    countries: Annotated[int, typer.Option(min=1, max=26, help="Countries of the rollout.")] = 26,
    mentors: Annotated[int, typer.Option(min=1, help="Mentors (junior digital natives).")] = 470,
    mentees: Annotated[int, typer.Option(min=1, help="Executives as mentees.")] = 1000,
    weeks: Annotated[int, typer.Option(min=3, help="Simulated weeks a pair meets.")] = 16,
    second_wave_week: Annotated[int, typer.Option(min=1, help="Week the second waves start.")] = 8,
    wave_size: Annotated[int, typer.Option(min=1, help="A country with more mentees runs a second wave.")] = 30,
    k_anonymity: Annotated[int, typer.Option(min=3, help="Smallest group whose survey results are shown.")] = 5,
    organisation: Annotated[str, typer.Option(help="Organisation (tenant) of the dev tokens.")] = "demo-group",
    out: Annotated[Path | None, typer.Option(help="Output directory (default: <data dir>/demo).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="HTTP requests in flight.")] = 8,
) -> None:
    """Drive a multinational rollout through the public HTTP APIs of a running
    `binome up` (dev tokens from the same data dir; the platform's dev clock
    simulates the months), print the rollout dashboard, the pairs at risk and
    the cross-silo network, and write the pictures to files.

    A programme holds 10,000 participants in a wave, 300 waves and 60
    countries as measured by bench/capacity.py (README: "What a programme
    holds"); the default world here is far inside that."""
    from libs.demo import DemoError, Options, run_demo

    options = Options(
        base_url=base_url, data_dir=get_settings().data_dir, out=out, organisation=organisation, seed=seed,
        countries=countries, mentors=mentors, mentees=mentees, weeks=weeks, second_wave_week=second_wave_week,
        wave_size=wave_size, k_anonymity=k_anonymity, concurrency=concurrency,
    )
    try:
        asyncio.run(run_demo(options))
    except (DemoError, ValueError) as exc:
        typer.secho(f"demo failed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
