"""The directory service: the people an organisation's HR system provisions
through SCIM 2.0 (RFC 7643/7644), served at ``/scim/v2``. The write side
enrollment and matching learn people, managers and leavers from (topic
``binome.directory.events``).

    domain/         the Person aggregate; pure Python
    service_layer/  commands and reads over one organisation
    adapters/       event-sourced repository, the ``people`` read table
    scim/           the SCIM protocol: models (scim2-models), filters as SQL, routes, errors
    entrypoints/    the FastAPI app (SCIM under /v2, GDPR erasure under /v1)
    migrations/     the read table ({schema} = the service's schema)
"""

from __future__ import annotations

from pathlib import Path

from libs.gdpr.compaction import compaction_workers
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.directory.adapters.projector import Projector
from services.directory.entrypoints.api import create_app
from services.directory.service_layer.people import People


async def rebuild_read_tables(ctx: ServiceContext) -> int:
    people = People(ctx.pool, ctx.store, ctx.vault)
    async with ctx.pool.acquire() as conn, conn.transaction():
        return await people.projector.rebuild(conn, ctx.store)


SERVICE = ServiceDefinition(
    "directory",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    rebuild_read_tables=rebuild_read_tables,
    read_tables=Projector,
    # SCIM's base URL (RFC 7644 §3.13 puts the version in it): /scim/v2/Users.
    also_mounted_at=("/scim",),
    workers=lambda ctx: compaction_workers(ctx, ()),
)
