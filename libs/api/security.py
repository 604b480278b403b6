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

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from libs.api.limits import RateLimits
from libs.api.problems import FORBIDDEN, Problem
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
    (429 once its source address failed too often, ``libs.api.limits``)."""
    # Per-client and per-source limits (libs/api/limits.py), one per platform,
    # set on apps built by ServiceDefinition.build_app and on its root app.
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if credentials is None:
        raise _failed(limits, request, _unauthorized("A bearer token is required."))
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        if verifier.may_block:
            # A JWKS fetch is blocking urllib I/O; keep it off the event loop.
            principal = await run_in_threadpool(verifier.verify, credentials.credentials)
        else:
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

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.has_role(*roles):
            raise Problem(
                403,
                detail=f"Requires one of the roles: {', '.join(sorted(roles))}.",
                type=FORBIDDEN,
            )
        return principal

    dependency.__name__ = f"requires_{'_or_'.join(roles)}"
    return dependency
