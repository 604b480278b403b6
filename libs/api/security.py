"""FastAPI dependencies for bearer-token authentication and role checks.

    @router.get("/v1/waves")
    async def list_waves(principal: Principal = Depends(current_principal)): ...

    @router.post("/v1/waves", dependencies=[Depends(requires(HR_ADMIN))])

The verifier is read from ``app.state.token_verifier`` (set by
``create_service_app``), so tests and services choose the key source without
touching this module. Failures are problem+json: 401 with
``WWW-Authenticate: Bearer`` (RFC 6750) when the token is missing or bad, 403
when the caller lacks the role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.api.limits import RateLimits
from libs.api.problems import FORBIDDEN, Problem, problem_response
from libs.asgi import source_of
from libs.auth.principal import Principal
from libs.auth.tokens import InvalidToken, KeySourceUnavailable, TokenVerifier

# auto_error=False: we answer with our own problem+json 401 rather than
# FastAPI's plain JSON one. Declaring HTTPBearer still documents the scheme
# in OpenAPI ("Authorize" button in /docs).
_bearer = HTTPBearer(auto_error=False, description="JWT issued by the identity provider")


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = 'Bearer realm="binome"'
    if error:
        challenge += f', error="{error}"'
    return Problem(401, detail=detail, headers={"WWW-Authenticate": challenge})


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    """The verified caller; 401 problem+json if there is no valid bearer token
    (429 once its source address failed too often, ``libs.api.limits``).

    Once per request, however many dependencies ask (a role check and an
    idempotency key both do): the caller's rate limit counts the request once."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    # Per-client and per-source limits (libs/api/limits.py), one per platform,
    # set on apps built by ServiceDefinition.build_app and on its root app.
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if credentials is None:
        raise _failed(limits, request, _unauthorized("A bearer token is required."))
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        # A token verified before under the keys in force: no RSA, no thread.
        principal = verifier.cached(credentials.credentials)
        if principal is None and verifier.may_block:
            # A JWKS fetch is blocking urllib I/O; keep it off the event loop.
            principal = await run_in_threadpool(verifier.verify, credentials.credentials)
        elif principal is None:
            principal = verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise _failed(limits, request, _unauthorized(str(exc), error="invalid_token")) from exc
    except KeySourceUnavailable as exc:
        raise Problem(503, detail="Token keys are temporarily unavailable.") from exc
    # Kept on the request so logging and audit code can record who acted.
    request.state.principal = principal
    if limits is not None:
        limits.check(principal)
    return principal


def _failed(limits: RateLimits | None, request: Request, refusal: Problem) -> Problem:
    """The 401 to raise, or the 429 of a source over its failed-authentication budget."""
    if limits is not None:
        limits.failed_authentication(source_of(request.scope))  # raises the 429
    return refusal


def requires(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the caller must hold at least one of ``roles`` (else 403)."""
    if not roles:
        raise ValueError("requires() needs at least one role")

    # The token straight from ``_bearer``, not through ``Depends(current_principal)``:
    # one level of FastAPI's dependency solving fewer on every request.
    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal:
        principal = await current_principal(request, credentials)
        if not principal.has_role(*roles):
            raise Problem(
                403,
                detail=f"Requires one of the roles: {', '.join(sorted(roles))}.",
                type=FORBIDDEN,
            )
        return principal

    dependency.__name__ = f"requires_{'_or_'.join(roles)}"
    return dependency


# --- the token before the input ----------------------------------------------


def _requires_token(route: Any) -> bool:
    """Whether ``route`` authenticates its caller (the bearer token among
    its dependencies, at any depth: ``current_principal`` and ``requires``
    both ask for it)."""
    pending = [route.dependant] if hasattr(route, "dependant") else []
    while pending:
        dependant = pending.pop()
        if dependant.call is _bearer:
            return True
        pending.extend(dependant.dependencies)
    return False


def install_token_first(app: FastAPI) -> None:
    """Answer 401 before any complaint about the input: an unparseable body
    (FastAPI's 400) or an invalid parameter or body (422) of a route that
    needs a token is refused as unauthenticated when the token is missing or
    bad. FastAPI parses the body and validates the parameters before it runs
    any dependency, so without this a caller without a token learns what
    the input must look like, and the documented order (401, then 4xx) fails."""
    for exc_type in (RequestValidationError, StarletteHTTPException):
        app.exception_handlers[exc_type] = _token_first(app.exception_handlers[exc_type])


def _token_first(answer: Callable[[Request, Exception], Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    async def handler(request: Request, exc: Exception) -> Response:
        invalid_input = isinstance(exc, RequestValidationError) or getattr(exc, "status_code", None) in (400, 422)
        route = request.scope.get("route")
        if invalid_input and route is not None and _requires_token(route) and not hasattr(request.state, "principal"):
            try:
                await current_principal(request, await _bearer(request))
            except Problem as refusal:
                return problem_response(refusal, request)
        return await answer(request, exc)

    return handler

