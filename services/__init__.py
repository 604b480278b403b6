"""Binome's services. Each one is listed here once it exists; ``binome up``
serves every service in this list, with its outbox relay and its consumers."""

from __future__ import annotations

from libs.runtime.service import ServiceDefinition
from services.directory import SERVICE as DIRECTORY
from services.enrollment import SERVICE as ENROLLMENT
from services.evaluation import SERVICE as EVALUATION
from services.insights import SERVICE as INSIGHTS
from services.matching import SERVICE as MATCHING
from services.sessions import SERVICE as SESSIONS

SERVICES: list[ServiceDefinition] = [ENROLLMENT, MATCHING, SESSIONS, EVALUATION, INSIGHTS, DIRECTORY]
