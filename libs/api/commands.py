"""What a command endpoint of every service answers when the store or the
``If-Match`` check refuses a write.

Each service lists these in its ``EXCEPTION_MAPPINGS`` beside its own:

* ``concurrent_change``: another writer appended to the stream first
  (``ConcurrencyError``), or the same event ids exist already
  (``DuplicateEventError``) -> 409 ``urn:binome:problem:concurrent-change``;
* ``stale_version``: ``If-Match`` named a version the object has moved past
  -> 412 ``urn:binome:problem:stale-version`` with the exception's text;
* ``rule_broken``: the domain's ``InvalidInput`` (libs/domain/errors.py)
  -> 422 naming each field of the body that breaks a rule.

``if_match_version`` reads that ``If-Match`` for a command endpoint.

``IdempotentCommands`` gives a service's parts object its ``run``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import Depends, Header
from fastapi.responses import Response

from libs.api.idempotency import IdempotencyKey, IdempotencyKeys, run_idempotently
from libs.api.problems import Problem, invalid
from libs.api.security import current_principal
from libs.auth.principal import Principal
from libs.domain.errors import InvalidInput

CONCURRENT_CHANGE = "urn:binome:problem:concurrent-change"
STALE_VERSION = "urn:binome:problem:stale-version"
#: The ETags this API issues, as an If-Match names them.
ETAG_PATTERN = r'^(\*|(W/)?"[0-9]{1,9}")$'


async def if_match_version(
    # Typed str (not str | None): the document then says a string, never a null header.
    if_match: str = Header(  # type: ignore[assignment]
        None,
        description='The ETag read before, e.g. "3" (W/"3" is read the same), or * for any version.',
        # Documented, not validated here: the token is checked before the input.
        json_schema_extra={"pattern": ETAG_PATTERN},
    ),
    _caller: Principal = Depends(current_principal),
) -> int | None:
    """The version a conditional command expects (a dependency).

    ETags are the stream's version, ``"3"`` (``W/"3"`` is read the same).
    Absent or ``*``: the command is unconditional. The caller is
    authenticated first (FastAPI caches it for the route's own role check):
    a request without a valid token is a 401, whatever its ``If-Match``.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise invalid([{"field": "header.If-Match", "message": 'An ETag of this API, e.g. "3".', "type": "value_error"}])
    return int(tag)


def concurrent_change(exc: Exception) -> Problem:
    return Problem(409, detail="The object changed meanwhile; read it again and retry.", type=CONCURRENT_CHANGE)


def stale_version(exc: Exception) -> Problem:
    return Problem(412, detail=str(exc), type=STALE_VERSION)


def rule_broken(exc: Exception) -> Problem:
    assert isinstance(exc, InvalidInput)
    errors = [{"field": f"body.{i.field}", "message": i.message, "type": "rule"} for i in exc.issues]
    return invalid(errors, "The request breaks a rule; see 'errors'.")


class IdempotentCommands:
    """``run``: one command and its response in one transaction, with the
    request's idempotency key. For a service's parts object that has
    ``pool``, ``keys`` (its ``IdempotencyKeys``) and
    ``unit_of_work(conn, correlation_id)``."""

    pool: asyncpg.Pool
    keys: IdempotencyKeys

    def unit_of_work(self, conn: asyncpg.Connection, correlation_id: str | None = None) -> Any:
        raise NotImplementedError

    async def run(
        self,
        work: Callable[[Any], Awaitable[Response]],
        *,
        key: IdempotencyKey | None = None,
        correlation_id: str | None = None,
    ) -> Response:
        """Run a command and build its response in one transaction (with its
        idempotency key, when the request has one)."""
        return await run_idempotently(
            self.pool, self.keys, key, lambda conn: work(self.unit_of_work(conn, correlation_id))
        )
