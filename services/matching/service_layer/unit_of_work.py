"""One command, one transaction: the pairs it loads and saves (with the read
tables), and the candidate pool it consults."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.matching.adapters.repository import Repository
from services.matching.service_layer.pool import PoolQueries


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    repo: Repository
    pool: PoolQueries
