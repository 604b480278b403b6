"""One command, one transaction: the aggregates it loads and saves and the
read tables they update (``Repository``), the views it may consult and the
HR directory as enrollment keeps it."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.enrollment.adapters.directory import DirectoryPeople
from services.enrollment.adapters.repository import Repository
from services.enrollment.service_layer.views import Views


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    repo: Repository
    views: Views
    directory: DirectoryPeople
