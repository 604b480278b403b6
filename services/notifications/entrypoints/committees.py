"""A committee's contacts (``/v1/committees/{country}/contacts``): who
reads the daily digest of pairs needing attention for one country of the
organisation (service_layer/digest.py).

Roles: an HR admin reads and sets the contacts of any country of its
organisation; a regional committee reads those of its own countries
(another country is a 404) and sets none: who is told for a committee is
the organisation's choice. Each organisation has its own contacts for a
country. The addresses are personal data, kept as participants' are
(service_layer/committees.py); every request is in the audit trail.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request

from libs.api.problems import Problem, problem_responses
from libs.api.routes import ApiRoute
from libs.api.security import requires
from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE, Principal, normalise_country
from services.notifications.entrypoints.schemas import CommitteeContactsIn, CommitteeContactsOut
from services.notifications.service_layer.committees import Contacts, committee_id

ERRORS = problem_responses(401, 403, 404, 422)
TAGS: list[str] = ["committee contacts"]
CountryPath = Path(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 code of the committee's country.")

router = APIRouter(prefix="/v1", route_class=ApiRoute)


def _country(who: Principal, country: str) -> str:
    country = normalise_country(country)
    if not who.can_see_country(country):
        raise Problem(404, detail=f"country {country} not found")
    return country


async def _read(request: Request, db: Any, who: Principal, country: str) -> dict[str, Any]:
    row = await request.app.state.contacts.row(db, who.organisation, country)
    found = row or {"addresses": [], "language": "en", "time_zone": "UTC", "updated_at": None}
    return {
        "country": country,
        "committee_id": committee_id(who.organisation, country),
        **{k: found[k] for k in ("addresses", "language", "time_zone", "updated_at")},
    }


@router.get("/committees/{country}/contacts", response_model=CommitteeContactsOut, responses=ERRORS, tags=TAGS)
async def committee_contacts(
    request: Request, country: str = CountryPath, who: Principal = Depends(requires(HR_ADMIN, REGIONAL_COMMITTEE))
) -> dict[str, Any]:
    """Who reads the country's committee digest (none set: no address)."""
    return await _read(request, request.app.state.pool, who, _country(who, country))


@router.put("/committees/{country}/contacts", response_model=CommitteeContactsOut, responses=ERRORS, tags=TAGS)
async def set_committee_contacts(
    body: CommitteeContactsIn, request: Request, country: str = CountryPath,
    who: Principal = Depends(requires(HR_ADMIN)),
) -> dict[str, Any]:
    """Replace who reads the country's committee digest (addresses, language,
    time zone); an invalid address or time zone is a 422 naming the field."""
    country = _country(who, country)
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await request.app.state.contacts.put(
            conn, who.organisation, country, addresses=[str(a) for a in body.addresses], language=body.language,
            time_zone=body.time_zone, at=request.app.state.clock(), by=who.subject,
        )
        return await _read(request, conn, who, country)


def install_committees(app: FastAPI, schema: str) -> None:
    app.state.contacts = Contacts(schema)
    app.include_router(router)
