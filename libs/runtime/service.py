"""What a service declares so that ``binome up`` (and its tests) can run it.

Each ``services/<name>/__init__.py`` exposes ``SERVICE = ServiceDefinition(...)``
and is listed in ``services.SERVICES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from libs.auth.tokens import TokenVerifier
from libs.eventstore.store import EventStore
from libs.messaging.consumer import Projection
from libs.settings import Settings


@dataclass
class ServiceContext:
    """What a running service gets: its pool, its store, the broker, auth."""

    name: str
    pool: asyncpg.Pool
    store: EventStore
    bootstrap: str
    settings: Settings
    verifier: TokenVerifier


@dataclass(frozen=True)
class ServiceDefinition:
    name: str  # also its schema, its event source (/binome/<name>) and URL prefix
    create_app: Callable[[ServiceContext], FastAPI]
    migrations: Path | None = None
    #: Read models this service keeps from other contexts' events.
    projections: Callable[[ServiceContext], Sequence[Projection]] = field(default=lambda ctx: ())
    #: Read tables the service writes in the same transaction as its own
    #: events (not through Kafka): rebuilds them from its log and returns the
    #: number of events applied. ``binome replay SERVICE`` runs it.
    rebuild_read_tables: Callable[[ServiceContext], Awaitable[int]] | None = None

    @property
    def schema(self) -> str:
        return self.name
