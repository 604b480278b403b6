"""Every refusal on ``/v2`` as a SCIM error (RFC 7644 §3.12): the
``urn:ietf:params:scim:api:messages:2.0:Error`` message with its ``scimType``,
in ``application/scim+json``, whatever raised it: scim2-models (bad
payload, filter, path, patch), the domain, the store, or the platform's own
authentication (whose problem+json a SCIM client would not read).

``ScimRoute`` is the route class of the SCIM router: it turns those
exceptions into the response before FastAPI's problem handlers see them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    SCIMException,
    UniquenessException,
)
from starlette.responses import JSONResponse

from libs.api.problems import UNSTORABLE_TEXT, Problem
from libs.api.routes import ApiRoute
from services.directory.domain.errors import InvalidInput, NotFound, UserNameTaken
from services.directory.domain.person import Gone
from services.directory.service_layer.people import StaleVersion

MEDIA_TYPE = "application/scim+json"


class ScimResponse(JSONResponse):
    media_type = MEDIA_TYPE


def scim_exception(exc: Exception) -> SCIMException | None:
    """The SCIM exception a refusal stands for (None: not a refusal)."""
    if isinstance(exc, SCIMException):
        return exc
    if isinstance(exc, ValidationError):
        first = Error.from_validation_errors(exc)[0]
        return SCIMException.from_error(first)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return InvalidValueException(detail=f"{where}: {first.get('msg', 'invalid')}")
    if isinstance(exc, (NotFound, Gone)):
        return NotFoundException(detail=str(exc))
    if isinstance(exc, UserNameTaken):
        return UniquenessException(detail=str(exc))
    if isinstance(exc, InvalidInput):
        return InvalidValueException(detail="; ".join(i.message for i in exc.issues))
    if isinstance(exc, UNSTORABLE_TEXT):
        return InvalidValueException(detail="Text may not contain the NUL character (\\u0000).")
    if isinstance(exc, StaleVersion):
        return PreconditionFailedException(detail=str(exc))
    if isinstance(exc, Problem) and exc.status < 500:
        error = Error(status=exc.status, detail=exc.detail or exc.title)
        refusal = SCIMException.from_error(error)
        refusal.context["headers"] = exc.headers
        return refusal
    return None


def error_response(refusal: SCIMException) -> ScimResponse:
    error = refusal.to_error()
    status = error.status or refusal.status
    headers = refusal.context.get("headers") or {}
    return ScimResponse(error.model_dump(scim_ctx=Context.DEFAULT), status_code=status, headers=headers)


class ScimRoute(ApiRoute):
    convertor = "scim_id"  # a schema's id is a URN (colons); .search is no id

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                refusal = scim_exception(exc)
                if refusal is None:
                    raise
                return error_response(refusal)

        return scim_handler
