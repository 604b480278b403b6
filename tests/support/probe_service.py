"""A minimal service built the way real services are, for platform tests.

POST /v1/probes appends a ProbeRecorded event; GET /v1/probes reads the
``probe_tally`` read model that its own projection keeps from the
``platform`` topic. It exercises auth, the store, the relay, the broker and
the consumer runtime end to end.
"""

from __future__ import annotations

import uuid

from fastapi import Depends
from pydantic import BaseModel, ConfigDict

from libs.api.app import create_service_app
from libs.api.security import requires
from libs.auth.principal import Principal
from libs.events import new_envelope
from libs.events.contexts.platform import ProbeRecorded
from libs.eventstore.store import ConcurrencyError
from libs.runtime.service import ServiceContext, ServiceDefinition
from tests.support.projections import ProbeTally

NAME = "platform"


class ProbeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: int


def create_app(ctx: ServiceContext):
    app = create_service_app(
        NAME, title="Probe", version="1", verifier=ctx.verifier, exception_mappings={ConcurrencyError: 409}
    )

    @app.post("/v1/probes", status_code=201)
    async def record(body: ProbeIn, who: Principal = Depends(requires("hr_admin"))) -> dict:
        subject = f"probe-{uuid.uuid4()}"
        envelope = new_envelope(ProbeRecorded(probe=subject, value=body.value), service=NAME, subject=subject, tenant=who.organisation)
        result = await ctx.store.append(subject, 0, [envelope])
        return {"subject": subject, "version": result.version}

    @app.get("/v1/probes")
    async def read(_: Principal = Depends(requires("hr_admin"))) -> dict:
        rows = await ctx.pool.fetch(f"SELECT value, times FROM {NAME}.probe_tally ORDER BY value")
        return {"probes": [dict(r) for r in rows]}

    return app


def projections(ctx: ServiceContext) -> list[ProbeTally]:
    return [ProbeTally(NAME, name="probe-tally")]


MIGRATIONS_SQL = f"""CREATE TABLE IF NOT EXISTS {NAME}.probe_tally (
    event_id uuid PRIMARY KEY, subject text NOT NULL, sequence int NOT NULL,
    value int NOT NULL, times int NOT NULL DEFAULT 1)"""


def definition(migrations_dir) -> ServiceDefinition:
    (migrations_dir / "0001_probe_tally.sql").write_text(MIGRATIONS_SQL.replace(f"{NAME}.", "{schema}."))
    return ServiceDefinition(NAME, create_app, migrations=migrations_dir, projections=projections)
