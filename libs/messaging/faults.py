"""Transient or deterministic: what a consumer does with a failure.

A *transient* fault belongs to the world, not to the event: the database or
the broker is unreachable, busy, or refuses writes for now (a lock, a
serialization conflict, a timeout, a constraint an operator added for a
while). The same batch applies later, so the consumer holds its offsets and
retries it, backing off, for as long as it takes: dropping the event would
leave a read model wrong for ever over a fault of a few seconds.

A *deterministic* fault belongs to the event or to the code: the record does
not decode, the payload is invalid, the domain refuses it, the handler has a
bug. Retrying gives the same answer, so after a few tries the event is parked
(dead-lettered, durably) and its partition moves on.

Every ``asyncpg.PostgresError`` raised while applying a decoded, valid event
counts as transient, constraint and undefined-table errors included: the event
passed validation, so it is the database's state that refuses it, and that
state is what an operator repairs. Such a consumer stops and its backlog
grows (its lag alert fires) instead of losing events silently.
"""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaError

from libs.domain.errors import DomainError

#: Infrastructure failures: retrying the same work later may succeed.
#: ``OSError`` covers ``ConnectionError`` and ``TimeoutError``; asyncpg's
#: connection errors are ``PostgresConnectionError`` (a ``PostgresError``) or
#: ``InterfaceError`` (``ConnectionDoesNotExistError``...); ``KafkaError``
#: comes from producing a dead letter while the broker is down.
TRANSIENT = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError)


def is_transient(exc: BaseException) -> bool:
    """True if the work that raised ``exc`` should be retried as it is, for ever.

    A ``DomainError`` is the domain's answer, never transient, even when a
    handler raised it while handling a database error.
    """
    if isinstance(exc, DomainError):
        return False
    return isinstance(exc, TRANSIENT)
