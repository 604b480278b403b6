"""Which failures a consumer retries for ever (transient) and which it parks."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError
from pydantic import BaseModel, ValidationError

from libs.domain.errors import InvalidState, NotFound
from libs.events.registry import UnknownEventType
from libs.messaging.faults import is_transient


def validation_error() -> ValidationError:
    class Payload(BaseModel):
        value: int

    try:
        Payload.model_validate({"value": "not a number"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


class DomainErrorFromTheDatabase(InvalidState):
    """A handler that turns a database answer into the domain's refusal."""


TRANSIENT = [
    asyncpg.PostgresConnectionError("connection lost"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.TooManyConnectionsError("too many clients"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.SerializationError("could not serialize access"),  # 40001
    asyncpg.DeadlockDetectedError("deadlock detected"),  # 40P01
    asyncpg.LockNotAvailableError("could not obtain lock"),  # 55P03
    asyncpg.QueryCanceledError("canceling statement due to statement timeout"),  # 57014
    asyncpg.CheckViolationError("new row violates check constraint"),  # a table refusing writes for now
    asyncpg.UndefinedTableError("relation does not exist"),
    ConnectionRefusedError("connect call failed"),
    ConnectionError("transient fault"),
    OSError("network is unreachable"),
    TimeoutError(),
    KafkaConnectionError("broker down while producing a dead letter"),
    KafkaTimeoutError(),
    NotLeaderForPartitionError(),
]

DETERMINISTIC = [
    ValueError("poison value 5"),
    validation_error(),
    UnknownEventType("binome.platform.FromTheFuture.v9"),
    NotFound("pair", "p-1"),
    InvalidState("pair already dissolved"),
    KeyError("a handler bug"),
    TypeError("a handler bug"),
    AssertionError("a handler bug"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_infrastructure_faults_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", DETERMINISTIC, ids=lambda e: type(e).__name__)
def test_what_the_event_or_the_code_refuses_is_deterministic(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_a_domain_error_stays_deterministic_even_raised_from_a_database_error() -> None:
    try:
        try:
            raise asyncpg.UniqueViolationError("duplicate key")
        except asyncpg.UniqueViolationError as db_error:
            raise DomainErrorFromTheDatabase("already enrolled") from db_error
    except DomainErrorFromTheDatabase as exc:
        assert not is_transient(exc)
