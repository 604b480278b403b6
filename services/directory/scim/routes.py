"""SCIM 2.0 service provider (RFC 7643/7644) under ``/v2`` of the directory
app, served by the platform at ``/scim/v2``.

Every route requires the ``provisioning`` role and works on the caller's
organisation only (another organisation's user is a 404). Requests and
responses are ``application/scim+json`` (``application/json`` is read too),
read and written with scim2-models; every refusal is a SCIM error
(``errors.ScimRoute``). Writes carry ``If-Match`` (``meta.version``, a weak
ETag of the person's stream version): a stale one is a 412 and changes
nothing.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.routing import APIRoute
from scim2_models import (
    Context,
    Error,
    InvalidSyntaxException,
    ListResponse,
    NotFoundException,
    PatchOp,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
    SearchRequest,
)
from starlette.routing import Match

from libs.api.security import requires
from libs.auth.principal import PROVISIONING, Principal
from libs.observability.correlation import current_correlation_id
from services.directory.scim import openapi
from services.directory.scim.errors import MEDIA_TYPE, ScimResponse, ScimRoute
from services.directory.scim.mapping import etag, record_of, user_of
from services.directory.scim.models import CONFIG, PROVIDER, USER_TYPE, ScimUser
from services.directory.scim.search import search
from services.directory.service_layer.people import People

router = APIRouter(prefix="/v2", tags=["scim"], route_class=ScimRoute, default_response_class=ScimResponse)
provisioning = requires(PROVISIONING)

ATTRIBUTES = Query(None, pattern=openapi.ATTRIBUTE_PATHS,
                   description="Comma-separated attribute paths to return (RFC 7644 §3.9).")
EXCLUDED = Query(None, alias="excludedAttributes", pattern=openapi.ATTRIBUTE_PATHS,
                 description="Comma-separated attribute paths to leave out (not with attributes).")
USER_ID = Path(description="The user's id (its meta.location ends with it).", max_length=100)


def people(request: Request) -> People:
    return request.app.state.people


def users_url(request: Request) -> str:
    """Where ``/Users`` is served, as the client reached it (``/scim/v2/Users``
    or ``/directory/v2/Users`` under ``binome up``: the mount is the root path)."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}/v2/Users"


def if_match(value: str | None) -> int | None:
    """The stream version ``If-Match`` names: None for none or ``*``; a tag
    that is not one of ours can match nothing (-1, so a 412)."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    return int(tag) if tag.isdigit() else -1


async def body_of(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidSyntaxException(detail="The body is not JSON.") from None


def response_parameters(attributes: str | None, excluded: str | None) -> ResponseParameters[ScimUser]:
    return ResponseParameters[ScimUser].model_validate({"attributes": attributes, "excludedAttributes": excluded})


def user_response(user: ScimUser, context: Context, params: ResponseParameters[ScimUser] | None = None,
                  status: int = 200) -> ScimResponse:
    assert user.meta is not None
    headers = {"ETag": str(user.meta.version), "Location": str(user.meta.location)}
    return ScimResponse(user.model_dump(scim_ctx=context, response_parameters=params), status, headers)


def discovery(model: Any, context: Context = Context.RESOURCE_QUERY_RESPONSE) -> ScimResponse:
    return ScimResponse(model.model_dump(scim_ctx=context))


# --------------------------------------------------------------------------- discovery


@router.get(
    "/ServiceProviderConfig", responses=openapi.responses(200, 401, 403, answer="ServiceProviderConfig"), response_model=None)
async def service_provider_config(_: Principal = Depends(provisioning)) -> Response:
    """What this service provider supports (RFC 7644 §4)."""
    return discovery(CONFIG)


@router.get(
    "/ResourceTypes", responses=openapi.responses(200, 401, 403, answer="ResourceTypes"), response_model=None)
async def resource_types(_: Principal = Depends(provisioning)) -> Response:
    """The resource types served: ``User`` with the enterprise and Binome extensions."""
    return discovery(ListResponse[ResourceType](total_results=1, start_index=1, items_per_page=1,
                                                resources=[USER_TYPE]))


@router.get(
    "/ResourceTypes/{resource_type_id}", responses=openapi.responses(200, 400, 401, 403, 404, answer="ResourceType"),
            response_model=None)
async def resource_type(
    resource_type_id: str = Path(max_length=100), _: Principal = Depends(provisioning)
) -> Response:
    """One resource type by its id (``User``)."""
    if resource_type_id != USER_TYPE.id:
        raise NotFoundException(detail=f"No resource type {resource_type_id!r}.")
    return discovery(USER_TYPE)


@router.get(
    "/Schemas", responses=openapi.responses(200, 401, 403, answer="Schemas"), response_model=None)
async def schemas(_: Principal = Depends(provisioning)) -> Response:
    """The schemas of the User resource: core (as Binome keeps it), enterprise, Binome."""
    found = list(PROVIDER.schemas)
    return discovery(ListResponse[Schema](total_results=len(found), start_index=1, items_per_page=len(found),
                                          resources=found))


@router.get(
    "/Schemas/{schema_id}", responses=openapi.responses(200, 400, 401, 403, 404, answer="Schema"), response_model=None)
async def schema(schema_id: str = Path(max_length=200), _: Principal = Depends(provisioning)) -> Response:
    """One schema by its URN."""
    for found in PROVIDER.schemas:
        if found.id == schema_id:
            return discovery(found)
    raise NotFoundException(detail=f"No schema {schema_id!r}.")


# --------------------------------------------------------------------------- users


@router.post(
    "/Users", status_code=201, responses=openapi.responses(201, 400, 401, 403, 409, answer="User"),
             response_model=None, openapi_extra=openapi.body("User"))
async def create_user(request: Request, who: Principal = Depends(provisioning)) -> Response:
    """Provision a person (``PersonProvisioned``). A ``userName`` another user
    of the organisation holds (case-insensitively) is a 409 ``uniqueness``."""
    user = ScimUser.model_validate(await body_of(request), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    row = await people(request).provision(who, record_of(user), current_correlation_id())
    return user_response(user_of(row, users_url(request)), Context.RESOURCE_CREATION_RESPONSE, status=201)


@router.get(
    "/Users", responses=openapi.responses(200, 400, 401, 403, answer="Users"), response_model=None)
async def list_users(
    request: Request,
    filter: str | None = Query(None, max_length=2000, description='e.g. userName eq "bjensen" (RFC 7644 §3.4.2.2).'),
    start_index: int | None = Query(None, alias="startIndex", description="1-based index of the first result."),
    count: int | None = Query(None, description="Results per page (at most 200)."),
    sort_by: str | None = Query(None, alias="sortBy", max_length=200, pattern=f"^{openapi.ATTRIBUTE_PATH}$"),
    sort_order: Literal["ascending", "descending"] | None = Query(None, alias="sortOrder"),
    attributes: str | None = ATTRIBUTES,
    excluded_attributes: str | None = EXCLUDED,
    who: Principal = Depends(provisioning),
) -> Response:
    """The organisation's users, filtered, sorted and paged (index pagination)."""
    query = {"filter": filter, "startIndex": start_index, "count": count, "sortBy": sort_by, "sortOrder": sort_order,
             "attributes": attributes, "excludedAttributes": excluded_attributes}
    return await _search(request, who, {k: v for k, v in query.items() if v is not None})


@router.post(
    "/Users/.search", responses=openapi.responses(200, 400, 401, 403, answer="Users"), response_model=None,
             openapi_extra=openapi.body("SearchRequest"))
async def search_users(request: Request, who: Principal = Depends(provisioning)) -> Response:
    """The same query as ``GET /Users``, in a ``SearchRequest`` body (RFC 7644 §3.4.3)."""
    return await _search(request, who, await body_of(request))


@router.post(
    "/.search", responses=openapi.responses(200, 400, 401, 403, answer="Users"), response_model=None,
             openapi_extra=openapi.body("SearchRequest"))
async def search_all(request: Request, who: Principal = Depends(provisioning)) -> Response:
    """A search over every resource type (RFC 7644 §3.4.3): users are the only one."""
    return await _search(request, who, await body_of(request))


async def _search(request: Request, who: Principal, query: Any) -> Response:
    search_request = SearchRequest[ScimUser].model_validate(query, scim_ctx=Context.SEARCH_REQUEST)
    directory = people(request)
    total, users = await search(directory.pool, directory.schema, who.organisation, search_request,
                                users_url(request))
    page = ListResponse[ScimUser](total_results=total, start_index=max(search_request.start_index or 1, 1),
                                  items_per_page=len(users), resources=users)
    return ScimResponse(page.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search_request))


@router.get(
    "/Users/{user_id}", responses=openapi.responses(200, 304, 400, 401, 403, 404, answer="User"), response_model=None)
async def get_user(
    request: Request,
    user_id: str = USER_ID,
    attributes: str | None = ATTRIBUTES,
    excluded_attributes: str | None = EXCLUDED,
    if_none_match: str | None = Header(None, description="The ETag held: 304 if it is still current."),
    who: Principal = Depends(provisioning),
) -> Response:
    """One user of the organisation."""
    params = response_parameters(attributes, excluded_attributes)
    row = await people(request).row(people(request).pool, who.organisation, user_id)
    if if_none_match is not None and if_none_match.strip() in (etag(row["version"]), f'"{row["version"]}"'):
        return Response(status_code=304, headers={"ETag": etag(row["version"])})
    return user_response(user_of(row, users_url(request)), Context.RESOURCE_QUERY_RESPONSE, params)


@router.put(
    "/Users/{user_id}", responses=openapi.responses(200, 400, 401, 403, 404, 409, 412, answer="User"),
            response_model=None, openapi_extra=openapi.body("User"))
async def replace_user(
    request: Request,
    user_id: str = USER_ID,
    match: str | None = Header(None, alias="If-Match", description="meta.version read before: 412 if stale."),
    who: Principal = Depends(provisioning),
) -> Response:
    """Replace a user (RFC 7644 §3.5.1): what the body leaves out is cleared;
    ``active: false`` is a leaver (``PersonDeactivated``)."""
    wanted = ScimUser.model_validate(await body_of(request), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    location = users_url(request)

    def replaced(row: dict[str, Any]) -> Any:
        wanted.replace(user_of(row, location))  # read-only attributes kept, immutable ones checked
        return record_of(wanted)

    row = await people(request).change(who, user_id, replaced, if_match(match), current_correlation_id())
    return user_response(user_of(row, location), Context.RESOURCE_REPLACEMENT_RESPONSE)


@router.patch(
    "/Users/{user_id}", responses=openapi.responses(200, 400, 401, 403, 404, 409, 412, answer="User"),
              response_model=None, openapi_extra=openapi.body("PatchOp"))
async def patch_user(
    request: Request,
    user_id: str = USER_ID,
    match: str | None = Header(None, alias="If-Match", description="meta.version read before: 412 if stale."),
    who: Principal = Depends(provisioning),
) -> Response:
    """Change a user with ``add``/``replace``/``remove`` operations (RFC 7644
    §3.5.2); all of them or none apply."""
    patch = PatchOp[ScimUser].model_validate(await body_of(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    location = users_url(request)

    def patched(row: dict[str, Any]) -> Any:
        user = user_of(row, location)
        patch.patch(user)
        return record_of(user)

    row = await people(request).change(who, user_id, patched, if_match(match), current_correlation_id())
    return user_response(user_of(row, location), Context.RESOURCE_PATCH_RESPONSE)


@router.delete(
    "/Users/{user_id}", status_code=204, responses=openapi.responses(204, 400, 401, 403, 404, 412),
               response_model=None)
async def delete_user(
    request: Request,
    user_id: str = USER_ID,
    match: str | None = Header(None, alias="If-Match", description="meta.version read before: 412 if stale."),
    who: Principal = Depends(provisioning),
) -> Response:
    """Deprovision a user: a leaver (``PersonDeactivated``), then gone
    (``PersonDeleted``); its ``userName`` is free again. Personal data stays
    until erased (``POST /v1/people/{person_id}:erase``)."""
    await people(request).delete(who, user_id, if_match(match), current_correlation_id())
    return Response(status_code=204, media_type=MEDIA_TYPE)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unknown(request: Request, path: str) -> Response:
    """Anything else under /v2, as a SCIM client expects it: a 405 naming
    the methods an existing endpoint takes, else a 404."""
    allowed = sorted({m for route in router.routes if isinstance(route, APIRoute)
                      and route.endpoint is not unknown and route.matches(request.scope)[0] is Match.PARTIAL
                      for m in route.methods})
    if allowed:
        refusal = SCIMException.from_error(Error(status=405, detail=f"/{path} takes {', '.join(allowed)}."))
        refusal.context["headers"] = {"Allow": ", ".join(allowed)}
        raise refusal
    raise NotFoundException(detail=f"No SCIM endpoint /{path}.")

