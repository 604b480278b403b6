"""Which failures are a dependency outage (503 + Retry-After), not a bug (500)."""

from __future__ import annotations

import asyncpg
import pytest

from libs.api.problems import is_outage


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        FileNotFoundError(2, "no socket"),  # the embedded server's socket is gone
        TimeoutError(),  # connect or pool acquire timeout
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
    ],
)
def test_outages(exc: BaseException) -> None:
    assert is_outage(exc)


def test_an_outage_wrapped_by_a_middleware_is_still_one() -> None:
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError as cause:
            raise RuntimeError("audit write failed") from cause
    except RuntimeError as wrapped:
        assert is_outage(wrapped)
    assert is_outage(ExceptionGroup("task group", [ValueError(), ConnectionRefusedError()]))


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ],
)
def test_bugs_and_bad_data_are_not_outages(exc: BaseException) -> None:
    assert not is_outage(exc)
