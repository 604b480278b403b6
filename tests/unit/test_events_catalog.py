"""``binome events``: every event type has a producer that really emits it,
every consumer method handles a type that exists (read from the code)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from typer.testing import CliRunner

import libs.events.contexts  # noqa: F401  (registers every event type)
from libs.cli import app
from libs.domain.projector import InlineProjector
from libs.events.registry import registry
from libs.messaging.dispatch import Consumer
from libs.runtime.catalog import gaps, routes
from libs.runtime.service import ServiceDefinition
from services import SERVICES

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalogue_is_complete():
    assert gaps(SERVICES, registry) == []


def test_every_produced_type_is_built_by_its_producer():
    """The producer named for a context is the one whose code makes the event."""
    for route in routes(SERVICES, registry):
        if route.producer not in {s.name for s in SERVICES}:
            continue
        sources = (ROOT / "services" / route.producer).rglob("*.py")
        made = re.compile(rf"\b{route.name}\(")
        assert any(made.search(path.read_text()) for path in sources), f"{route.type}: {route.producer} never builds it"


def test_a_method_for_a_type_that_does_not_exist_is_a_gap():
    class Stray(Consumer):
        name = "stray"
        contexts = ("matching",)

        async def on_ProgrammeCreated(self, conn, envelope, event) -> None:  # enrollment's, not matching's
            pass

        async def reset(self, conn) -> None:
            pass

    stray = ServiceDefinition("stray", create_app=lambda ctx: None, projections=lambda ctx: [Stray()])
    assert gaps([*SERVICES, stray], registry) == [
        "stray: Stray.on_ProgrammeCreated handles no event type of ('matching',)"
    ]


def test_a_context_without_producer_is_a_gap():
    without_enrollment = [s for s in SERVICES if s.name != "enrollment"]
    problems = gaps(without_enrollment, registry)
    assert "binome.enrollment.ProgrammeCreated.v1: no producer" in problems


def test_binome_events_lists_every_type_with_its_consumers():
    result = CliRunner().invoke(app, ["events", "--json"])
    assert result.exit_code == 0, result.output
    listed = {r["type"]: r for r in orjson.loads(result.output)}
    assert set(listed) == set(registry.models)
    erased = listed["binome.enrollment.ParticipantErased.v1"]
    assert erased["producer"] == "enrollment"
    assert {c["consumer"] for c in erased["consumers"]} == {
        "enrollment-read-tables",  # its producer's own read tables, in the appending transaction
        "matching-candidate-pool", "sessions-pair-directory", "evaluation-intake", "insights", "notifications-people",
        "notifications-webhooks",  # every business event may be pushed to an HR platform
    }
    # The intake is a consumer like the others (the old grep recipe missed it).
    held = listed["binome.sessions.SessionHeld.v1"]
    assert {
        "service": "evaluation", "consumer": "evaluation-intake", "method": "Intake.on_SessionHeld", "kind": "consumer"
    } in held["consumers"]
    # The producer's inline projector comes first, with the method that writes the row.
    assert held["consumers"][0] == {
        "service": "sessions", "consumer": "sessions-read-tables", "method": "Projector.on_SessionHeld", "kind": "inline"
    }
    formed = listed["binome.matching.PairFormed.v1"]["consumers"][0]
    assert formed["kind"] == "inline" and formed["method"] == "PairDoc.on_PairFormed"  # a batched, folded type


def test_every_own_event_type_has_an_inline_projector_method():
    """The services that keep read tables of their own events handle every
    type of their context there (or appending it would fail)."""
    with_tables = {s.name for s in SERVICES if s.read_tables is not None}
    assert with_tables == {"directory", "enrollment", "evaluation", "matching", "sessions"}
    for route in routes(SERVICES, registry):
        if route.producer in with_tables:
            inline = [c for c in route.consumers if c.kind == "inline"]
            assert [c.service for c in inline] == [route.producer], route.type


def test_an_inline_projector_of_another_context_or_missing_a_type_is_a_gap():
    class Strayed(InlineProjector):
        context = "matching"

        async def on_ProgrammeCreated(self, conn, envelope, event) -> None:  # enrollment's
            pass

    stray = ServiceDefinition("stray", create_app=lambda ctx: None, read_tables=Strayed)
    problems = gaps([*SERVICES, stray], registry)
    assert "stray: Strayed projects 'matching', not its own context" in problems
    assert "stray: Strayed.on_ProgrammeCreated handles no event type of 'matching'" in problems
    assert "stray: Strayed has no method for its own PairFormed" in problems


def test_binome_events_prints_a_table():
    result = CliRunner().invoke(app, ["events"])
    assert result.exit_code == 0, result.output
    assert "binome.matching.PairFormed.v1" in result.output
    assert "Intake.on_PairFormed" in result.output
    assert "matching-read-tables (inline) -> PairDoc.on_PairFormed" in result.output
