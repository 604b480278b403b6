"""A participant's data as one JSON document (GDPR right of access).

Each service that keeps personal data serves its own part at
``GET /v1/participants/{participant_id}/export`` (``export_router``), from its
own tables only. ``GET /v1/gdpr/participants/{participant_id}/export``
(``gdpr_router``, on the platform's root app) asks every such service with the
caller's own token and puts the parts together, so the services' isolation
rules apply to the export exactly as to any read. Both are for the global HR
admin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema, create_model

from libs.api.problems import Problem, problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, Principal
from libs.events.registry import registry

if TYPE_CHECKING:
    from libs.eventstore.store import EventStore

EXPORT_PATH = "/v1/participants/{participant_id}/export"

#: A service's part: its data about the participant, or None if it has none
#: (or the caller may not see them: the same 404 as any read).
Collect = Callable[[Request, Principal, UUID], Awaitable[dict[str, Any] | None]]


class ExportPart(BaseModel):
    """The base of every model of an export's part: an undeclared key is an
    error, never dropped. A response model drops what it does not declare,
    and an export missing a field breaches the right of access: better a 500
    (the assembled export then refuses to hand out a partial document) than a
    silently shorter export."""

    model_config = ConfigDict(extra="forbid")


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


#: An instant as the read model wrote it (ISO 8601, ``+00:00``; a datetime is
#: written the way ``jsonable_encoder`` did): kept as the string it is, so
#: that typing an export does not rewrite its values.
Instant = Annotated[str, BeforeValidator(_iso), WithJsonSchema({"type": "string", "format": "date-time"})]


class ActorExport(ExportPart):
    """Who made a change, as the read models keep it (``Actor``)."""

    subject: str
    client_id: str | None


def export_model(service: str, data: type[ExportPart]) -> type[BaseModel]:
    """The answer of ``service``'s export: its name, the participant and ``data``."""
    return create_model(
        f"{service.title()}Export", __base__=ExportPart, service=(str, ...), participant_id=(UUID, ...), data=(data, ...)
    )


def export_router(service: str, collect: Collect, data: type[ExportPart]) -> APIRouter:
    """The export route; ``data`` is the model of the part (every field
    ``collect`` returns). A field the model gives a default is left out of
    the answer when ``collect`` left it out (``response_model_exclude_unset``):
    typing the export adds no key the read model does not hold."""
    router = APIRouter(tags=["gdpr"], route_class=ApiRoute)

    @router.get(
        EXPORT_PATH,
        responses=problem_responses(401, 403, 404, 422),
        response_model=export_model(service, data),
        response_model_exclude_unset=True,
    )
    async def export_participant(
        participant_id: UUID, request: Request, who: Principal = Depends(requires(HR_ADMIN))
    ) -> dict[str, Any]:
        """Everything this service keeps about the participant (global HR admin)."""
        data = await collect(request, who, participant_id)
        if data is None:
            raise Problem(404, detail=f"No participant {participant_id} here.")
        return {"service": service, "participant_id": str(participant_id), "data": data}

    return router


async def personal_values(store: EventStore, stream_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The personal fields of every event of ``stream_ids``, opened, by
    stream: what people wrote that a service keeps only in its log (a decline
    or exclusion note), so that the export holds it too."""
    found: dict[str, list[dict[str, Any]]] = {}
    for stream_id in dict.fromkeys(stream_ids):
        for envelope in await store.read_stream(stream_id):
            model = registry.models.get(envelope.type)
            fields = sorted((model.personal_fields if model else frozenset()) & envelope.data.keys())
            values = {f: envelope.data[f] for f in fields if envelope.data[f] is not None}
            if values:
                found.setdefault(stream_id, []).append(
                    {"type": model.name, "time": envelope.time.isoformat(), **values}
                )
    return found


async def assemble(
    participant_id: UUID, authorization: str, services: Mapping[str, httpx.AsyncClient]
) -> dict[str, Any]:
    """Ask every service for its part; 404 if none knows the participant."""
    parts: dict[str, Any] = {}
    for name, client in services.items():
        response = await client.get(
            EXPORT_PATH.format(participant_id=participant_id), headers={"Authorization": authorization}
        )
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            # Never hand out a partial export as if it were whole.
            raise Problem(502, detail=f"The {name} service could not export ({response.status_code}).")
        parts[name] = response.json()["data"]
    if not parts:
        raise Problem(404, detail=f"No participant {participant_id}.")
    return {
        "participant_id": str(participant_id),
        "generated_at": datetime.now(UTC).isoformat(),
        "services": parts,
    }


def gdpr_router(services: Callable[[], Mapping[str, httpx.AsyncClient]]) -> APIRouter:
    router = APIRouter(tags=["gdpr"], route_class=ApiRoute)

    @router.get("/v1/gdpr/participants/{participant_id}/export")
    async def export_everything(
        participant_id: UUID, request: Request, who: Principal = Depends(requires(HR_ADMIN))
    ) -> dict[str, Any]:
        """One JSON document with what every service keeps about the participant."""
        return await assemble(participant_id, request.headers["authorization"], services())

    return router
