"""One command, one transaction: the repository that loads and saves
aggregates (and the read tables), the views it may consult, and "now"
(from the service's clock, read once per command)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.sessions.adapters.repository import Repository
from services.sessions.service_layer.views import Views


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    repo: Repository
    views: Views
    now: datetime
