"""The isolation matrix, generated from each service's OpenAPI document.

``operations()`` lists every operation of every service in
``services.SERVICES`` (from ``app.openapi()`` of an app built the way
``binome up`` builds it). An operation is *country-owned* when its path names
a country-owned object (``COUNTRY_OWNED_PATH``), when it takes a list filter
naming a country or such an object (``COUNTRY_OWNED_QUERY``), or when its
body names one (``BODIES`` with a ``{placeholder}``). Every other operation
must be declared in its service's ``entrypoints/scope.py``.

``probes()`` turns an operation into concrete requests against the objects of
one ``CountryObjects``: one for the object the path (or body) names, one per
list filter.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from libs.api.routes import api_routes
from libs.auth.tokens import TokenVerifier
from libs.eventstore.store import EventStore
from libs.runtime.service import ServiceContext, ServiceDefinition
from libs.settings import Settings
from services import SERVICES
from tests.support.enrollment import mentee
from tests.support.matching import QUALIFIED

#: Path parameters that name a country-owned object (``programme_id`` and
#: ``template_id`` name organisation configuration).
COUNTRY_OWNED_PATH = {
    "wave_id", "participant_id", "mentee_id", "mentor_id", "run_id", "pair_id", "session_id", "check_in_id",
    "assignment_id", "exclusion_id",
}
#: Query parameters that filter a list by a country or a country-owned object.
COUNTRY_OWNED_QUERY = {"country", "wave_id", "participant_id", "mentee_id", "mentor_id", "pair_id"}
#: Path parameters that name organisation configuration, or the directory's
#: people (an organisation's, whatever their country), filled from the world.
ORGANISATION_PATH = {"programme_id", "template_id", "user_id", "person_id", "resource_type_id", "schema_id",
                     "endpoint_id", "delivery_id",  # webhooks: tests/integration/test_notifications_webhooks.py
                     "country"}  # a committee's contacts, per organisation: tests/integration/test_committee_digest.py
#: Path parameters that choose among fixed values (an enum), filled with one of them.
CHOICE_PATH = {"dataset": "pairs"}
NEEDS = {"answers": [{"question_id": "priorities", "themes": ["data_ai"]}, {"question_id": "least_at_ease", "themes": []}]}

#: A valid body for each write that takes one; ``{name}`` is replaced by the
#: probed object named ``name`` (a country-owned object named in a body makes
#: the operation country-owned). (service, method, path) -> (content type, body).
BODIES: dict[tuple[str, str, str], tuple[str, Any]] = {
    ("enrollment", "POST", "/v1/programmes"): ("application/json", {"name": "Probe", "mode": "reverse"}),
    ("enrollment", "PATCH", "/v1/programmes/{programme_id}/settings"): ("application/json", {"languages": ["en", "fr"]}),
    ("enrollment", "POST", "/v1/programmes/{programme_id}/waves"): (
        "application/json",
        {"name": "Probe wave", "region": "Europe", "country": "DE", "committee": "probe",
         "starts_on": "2026-01-05", "ends_on": "2099-06-30", "target_pairs": 3},
    ),
    ("enrollment", "POST", "/v1/waves/{wave_id}/participants"): ("application/json", mentee("ISO-PROBE")),
    ("enrollment", "POST", "/v1/waves/{wave_id}/participants:import"): ("application/json", [mentee("ISO-PROBE-2")]),
    ("enrollment", "POST", "/v1/waves/{wave_id}/participants:from-directory"): (
        "application/json",
        {"role": "mentee", "employee_ref": "ISO-PROBE-3", "motivation": "Probe.", "tenure_years": 3,
         "learner_profile": "mixed", "themes_wanted": [{"theme": "data_ai", "level": 1}]},
    ),
    ("enrollment", "PATCH", "/v1/participants/{participant_id}"): ("application/json", {"motivation": "Changed."}),
    ("enrollment", "POST", "/v1/participants/{participant_id}:withdraw"): ("application/json", {"reason": "Probe."}),
    ("enrollment", "POST", "/v1/participants/{participant_id}:transfer"): ("application/json", {"wave_id": "{wave_id}"}),
    ("enrollment", "POST", "/v1/waves/{wave_id}/participants:transfer"): (
        "application/json", {"to_wave_id": "{wave_id}", "participant_ids": ["{participant_id}"]},
    ),
    ("enrollment", "POST", "/v1/participants/{participant_id}/needs-answers"): ("application/json", NEEDS),
    ("enrollment", "POST", "/v1/participants/{participant_id}/qualification"): ("application/json", QUALIFIED),
    ("matching", "POST", "/v1/runs"): ("application/json", {"wave_ids": ["{wave_id}"]}),
    ("matching", "POST", "/v1/runs:preview"): ("application/json", {"wave_ids": ["{wave_id}"]}),
    ("matching", "POST", "/v1/mentees/{mentee_id}/choices"): ("application/json", {"mentor_ids": ["{mentor_id}"]}),
    ("matching", "POST", "/v1/pairs/{pair_id}:decline"): ("application/json", {"note": "Probe."}),
    ("matching", "POST", "/v1/pairs/{pair_id}:dissolve"): ("application/json", {"reason": "hr_decision"}),
    ("matching", "POST", "/v1/exclusions"): ("application/json", {"mentee_id": "{mentee_id}", "mentor_id": "{mentor_id}"}),
    ("matching", "POST", "/v1/runs/{run_id}:confirm"): ("application/json", {}),
    ("matching", "POST", "/v1/exclusions/{exclusion_id}:lift"): ("application/json", {"reason": "Probe."}),
    ("matching", "POST", "/v1/mentors/{mentor_id}/interests"): ("application/json", {"mentee_id": "{mentee_id}"}),
    ("sessions", "POST", "/v1/sessions:record-outcomes"): (
        "application/json",
        {"outcomes": [{"session_id": "{session_id}", "outcome": "held", "actual_minutes": 30}]},
    ),
    ("sessions", "POST", "/v1/pairs/{pair_id}/sessions"): (
        "application/json",
        {"starts_at": "2099-03-02T10:00:00+00:00", "duration_minutes": 45, "format": "remote", "planned_topics": []},
    ),
    ("sessions", "POST", "/v1/sessions/{session_id}:move"): ("application/json", {"starts_at": "2099-03-03T10:00:00+00:00"}),
    ("sessions", "POST", "/v1/sessions/{session_id}:cancel"): ("application/json", {"reason": "Probe."}),
    ("sessions", "POST", "/v1/sessions/{session_id}:mark-held"): ("application/json", {"actual_minutes": 30}),
    ("sessions", "POST", "/v1/sessions/{session_id}:mark-no-show"): ("application/json", {"absent": "mentee"}),
    ("sessions", "POST", "/v1/pairs/{pair_id}/check-ins"): ("application/json", {"mood": 3}),
    ("sessions", "PUT", "/v1/programmes/{programme_id}/session-settings"): ("application/json", {"weekly_hours": 40}),
    ("evaluation", "POST", "/v1/templates/{template_id}/versions"): (
        "application/json",
        {"title": {"en": "Probe", "fr": "Sonde"},
         "questions": [{"question_id": "q1", "kind": "scale", "text": {"en": "How?", "fr": "Comment ?"}}]},
    ),
    ("evaluation", "PUT", "/v1/programmes/{programme_id}/evaluation-settings"): ("application/json", {"k_anonymity": 5}),
    ("evaluation", "POST", "/v1/templates/{template_id}/answers:import"): (
        "text/csv",
        "assignment_id;new_skills;apply_at_work\n{assignment_id};3;3\n",  # the world's template: closing
    ),
    ("evaluation", "POST", "/v1/assignments/{assignment_id}/answers"): ("application/json", {"answers": {"q1": 3}}),
    ("insights", "PUT", "/v1/programmes/{programme_id}/health-rules"): ("application/json", {"first_session_within_days": 20}),
    ("notifications", "POST", "/v1/webhooks"): (
        "application/json", {"url": "https://hr.example.com/binome", "event_types": ["binome.matching.*"]},
    ),
    ("notifications", "PUT", "/v1/committees/{country}/contacts"): (
        "application/json", {"addresses": ["probe-committee@example.com"], "language": "fr", "time_zone": "Europe/Paris"},
    ),
    ("notifications", "PATCH", "/v1/webhooks/{endpoint_id}"): ("application/json", {"description": "Probe."}),
}


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    has_body: bool
    #: The roles its route requires (``libs.api.security.requires``); None: not declared on the route.
    roles: frozenset[str] | None

    @property
    def id(self) -> str:
        return f"{self.service}:{self.method} {self.path}"

    @property
    def body(self) -> tuple[str, Any] | None:
        return BODIES.get((self.service, self.method, self.path))

    @property
    def owned_path(self) -> set[str]:
        return set(self.path_params) & COUNTRY_OWNED_PATH

    @property
    def owned_query(self) -> list[str]:
        return [q for q in self.query_params if q in COUNTRY_OWNED_QUERY]

    @property
    def owned_body(self) -> bool:
        body = self.body
        return body is not None and any("{" + name + "}" in repr(body[1]) for name in COUNTRY_OWNED_QUERY | COUNTRY_OWNED_PATH)

    @property
    def country_owned(self) -> bool:
        return bool(self.owned_path or self.owned_query or self.owned_body)

    def expected_for(self, role: str) -> int:
        """404 (the object does not exist for the caller), or 403 where the
        route refuses the role whatever the object (that answer leaks nothing)."""
        return 403 if self.roles is not None and role not in self.roles else 404


@dataclass(frozen=True)
class Probe:
    method: str
    url: str  # under the service, e.g. /v1/pairs/<id>?country=DE
    content_type: str | None = None
    body: Any = None
    kind: str = "object"  # or "filter <name>"

    def request_kwargs(self) -> dict[str, Any]:
        if self.content_type is None:
            return {}
        if self.content_type == "application/json":
            return {"json": self.body}
        return {"content": self.body, "headers": {"content-type": self.content_type}}


@dataclass
class Values:
    """What fills the parameters of a probe: the country-owned objects probed,
    and the organisation's programme and template."""

    owned: dict[str, str]
    organisation: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.owned.get(name) or self.organisation[name]


def fill(value: Any, values: Values) -> Any:
    if isinstance(value, str):
        for name in COUNTRY_OWNED_PATH | COUNTRY_OWNED_QUERY | ORGANISATION_PATH:
            if "{" + name + "}" in value:
                value = value.replace("{" + name + "}", values[name])
        for name, choice in CHOICE_PATH.items():
            value = value.replace("{" + name + "}", choice)
        return value
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


def probes(op: Operation, values: Values, *, filters: Iterable[str] | None = None) -> list[Probe]:
    """The requests that name the objects of ``values``: the object the path
    or body names, then each list filter (those in ``filters``, if given)."""
    path = fill(op.path, values)
    content_type, body = op.body or (None, None)
    body = fill(body, values)
    result = []
    if op.owned_path or op.owned_body or not op.owned_query:
        result.append(Probe(op.method, path, content_type, body))
    for name in op.owned_query:
        if filters is not None and name not in filters:
            continue
        result.append(Probe(op.method, f"{path}?{name}={values[name]}", content_type, body, f"filter {name}"))
    return result


# --------------------------------------------------------------------------- the documents


def _roles(route: APIRoute) -> frozenset[str] | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        call = dep.call
        if call is not None and getattr(call, "__name__", "").startswith("requires_"):
            roles = inspect.getclosurevars(call).nonlocals.get("roles")
            if roles:
                return frozenset(roles)
        stack.extend(dep.dependencies)
    return None




@cache
def _apps() -> dict[str, FastAPI]:
    """Each service's app as ``binome up`` builds it (``build_app``), over no
    database: enough for its OpenAPI document and its routes."""
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="binome-openapi-")))
    logging.getLogger("libs.auth").setLevel(logging.ERROR)
    verifier = TokenVerifier.from_settings(settings)
    apps = {}
    for service in SERVICES:
        store = EventStore(None, service.schema, service=service.name)  # type: ignore[arg-type]
        apps[service.name] = service.build_app(ServiceContext(service.name, None, store, "", settings, verifier))  # type: ignore[arg-type]
    return apps


@cache
def documents() -> dict[str, dict[str, Any]]:
    return {name: app.openapi() for name, app in _apps().items()}


@cache
def operations() -> list[Operation]:
    result = []
    for service, doc in documents().items():
        routes = {(m, path): r for path, r in api_routes(_apps()[service].routes) for m in r.methods}
        for path, item in doc["paths"].items():
            for method, spec in item.items():
                params = spec.get("parameters", [])
                route = routes.get((method.upper(), path))
                result.append(
                    Operation(
                        service,
                        method.upper(),
                        path,
                        tuple(p["name"] for p in params if p["in"] == "path"),
                        tuple(p["name"] for p in params if p["in"] == "query"),
                        "requestBody" in spec,
                        _roles(route) if route is not None else None,
                    )
                )
    return result


def not_country_owned(service: ServiceDefinition | str) -> dict[tuple[str, str], str]:
    """The service's declaration (``services/<name>/entrypoints/scope.py``)."""
    name = service if isinstance(service, str) else service.name
    return importlib.import_module(f"services.{name}.entrypoints.scope").NOT_COUNTRY_OWNED


def matrix() -> list[Operation]:
    return [op for op in operations() if op.country_owned]


def declared() -> list[Operation]:
    return [op for op in operations() if not op.country_owned and (op.method, op.path) in not_country_owned(op.service)]
