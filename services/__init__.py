"""Binome's services. Each one is listed here once it exists; ``binome up``
serves every service in this list, with its outbox relay and its consumers."""

from __future__ import annotations

from libs.runtime.service import ServiceDefinition
from services.enrollment import SERVICE as ENROLLMENT

SERVICES: list[ServiceDefinition] = [ENROLLMENT]
