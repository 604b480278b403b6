"""The intake projection: other contexts' events -> evaluation's copies of
them and the surveys they trigger.

It reads ``binome.enrollment.events`` (programme languages, wave regions),
``binome.matching.events`` (pairs formed, completed, dissolved) and
``binome.sessions.events`` (sessions held). A trigger's assignments are
appended to evaluation's own log in the consumer runtime's transaction,
with ids derived from the trigger: a redelivered or replayed trigger stores
nothing twice, and ``applied_events`` commits with them.

Topics are not ordered with each other, so a trigger whose programme or pair
is not known yet waits in ``deferred_triggers`` and runs when it arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from libs.domain.repository import Change, Repository
from libs.events.contexts.enrollment import (
    Actor,
    ParticipantErased,
    ProgrammeCreated,
    ProgrammeSettingsChanged,
    WaveOpened,
)
from libs.events.contexts.evaluation import (
    CancellationReason,
    Phase,
    SurveyKind,
    SurveyTemplatePublished,
    TemplateOrigin,
)
from libs.events.contexts.matching import PairCompleted, PairDissolved, PairEvent, PairFormed
from libs.events.contexts.sessions import SessionHeld
from libs.events.envelope import Envelope
from libs.events.registry import registry
from libs.eventstore.store import EventStore
from libs.messaging.dispatch import Consumer
from services.evaluation.adapters.erasure import FreeText
from services.evaluation.adapters.references import References
from services.evaluation.domain import assignments as rules
from services.evaluation.domain.assignments import Assignment, Pair, derived_id
from services.evaluation.domain.defaults import default_template
from services.evaluation.service_layer.views import Views

#: Who makes the changes the intake decides (the trigger is the causation).
SYSTEM_ACTOR = Actor(subject="service:evaluation")


def pair_of(event: PairEvent) -> Pair:
    people = event.people
    return Pair(event.pair_id, event.programme_id, event.wave_id, event.country, people.mentee_id, people.mentor_id)


@dataclass
class Intake(Consumer):
    """A process manager: one event at a time (the base's ``handle_batch``),
    it appends evaluation's own events and reads what earlier events decided.
    Every other event of these contexts says nothing evaluation needs."""

    store: EventStore
    #: Evaluation's repository over a connection (correlation id, cause).
    repository: Callable[[asyncpg.Connection, str | None, UUID | None], Repository]
    references: References
    views: Views
    name: str = "evaluation-intake"
    contexts: tuple[str, ...] = ("enrollment", "matching", "sessions")
    free_text: FreeText = field(init=False)

    def __post_init__(self) -> None:
        self.free_text = FreeText(self.store.schema)

    async def reset(self, conn: asyncpg.Connection) -> None:
        await self.references.reset(conn)
        await self.free_text.reset(conn)

    def _repository(self, conn: asyncpg.Connection, trigger: Envelope) -> Repository:
        """Evaluation's repository, its changes caused by ``trigger``."""
        return self.repository(conn, trigger.correlationid, trigger.id)

    async def on_ProgrammeCreated(self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeCreated) -> None:
        await self.references.put_programme(conn, event.programme_id, envelope.tenant, event.settings.languages)
        await self._create_defaults(self._repository(conn, envelope), envelope.tenant, event)
        await self._release(conn, f"programme:{event.programme_id}")

    async def on_ProgrammeSettingsChanged(
        self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeSettingsChanged
    ) -> None:
        await self.references.put_programme(conn, event.programme_id, envelope.tenant, event.settings.languages)

    async def on_WaveOpened(self, conn: asyncpg.Connection, envelope: Envelope, event: WaveOpened) -> None:
        await self.references.put_wave(
            conn, event.wave_id, event.programme_id, envelope.tenant, event.country, event.region
        )

    async def on_PairFormed(self, conn: asyncpg.Connection, envelope: Envelope, event: PairFormed) -> None:
        await self._pair_formed(conn, self._repository(conn, envelope), envelope, event)

    async def on_SessionHeld(self, conn: asyncpg.Connection, envelope: Envelope, event: SessionHeld) -> None:
        await self._pair_fact(conn, self._repository(conn, envelope), envelope, event)

    async def on_PairCompleted(self, conn: asyncpg.Connection, envelope: Envelope, event: PairCompleted) -> None:
        await self._pair_fact(conn, self._repository(conn, envelope), envelope, event)

    async def on_PairDissolved(self, conn: asyncpg.Connection, envelope: Envelope, event: PairDissolved) -> None:
        await self._pair_fact(conn, self._repository(conn, envelope), envelope, event)

    async def on_ParticipantErased(self, conn: asyncpg.Connection, envelope: Envelope, event: ParticipantErased) -> None:
        # GDPR: the person's free text leaves the read tables (adapters/erasure.py).
        await self.free_text.forget_participant(conn, event.participant_id, envelope.time)

    async def _create_defaults(self, repo: Repository, organisation: str, event: ProgrammeCreated) -> None:
        languages = event.settings.languages
        changes = []
        for kind in SurveyKind:
            template_id = derived_id(event.programme_id, kind.value)
            title, questions = default_template(kind, languages)
            published = SurveyTemplatePublished(
                template_id=template_id,
                programme_id=event.programme_id,
                kind=kind,
                template_version=1,
                origin=TemplateOrigin.DEFAULT,
                languages=languages,
                title=title,
                questions=questions,
                actor=SYSTEM_ACTOR,
            )
            changes.append(Change(template_id, 0, organisation, None, [published], [derived_id(template_id, 1)]))
        await repo.save(*changes)

    async def _pair_formed(
        self, conn: asyncpg.Connection, repo: Repository, envelope: Envelope, event: PairFormed
    ) -> None:
        if not await self.views.has_templates(conn, event.programme_id):
            await self.references.defer(conn, envelope, f"programme:{event.programme_id}")
            return
        pair = pair_of(event)
        await self.references.put_pair(conn, pair, envelope.tenant)
        await self._assign(conn, repo, envelope, pair, rules.on_pair_formed(pair, envelope.time))
        await self._release(conn, f"pair:{pair.pair_id}")

    async def _pair_fact(
        self,
        conn: asyncpg.Connection,
        repo: Repository,
        envelope: Envelope,
        event: SessionHeld | PairCompleted | PairDissolved,
    ) -> None:
        known = await self.references.pair(conn, event.pair_id)
        if known is None:
            await self.references.defer(conn, envelope, f"pair:{event.pair_id}")
            return
        pair, status = known
        if isinstance(event, SessionHeld):
            if status != "dissolved":  # a dissolved pair's surveys were cancelled
                await self._assign(conn, repo, envelope, pair, rules.on_session_held(pair, event.session_id,
                                                                                     envelope.time))
        elif isinstance(event, PairCompleted):
            await self.references.set_pair_status(conn, pair.pair_id, "completed")
            await self._assign(conn, repo, envelope, pair, rules.on_pair_completed(pair, envelope.time))
        else:
            await self.references.set_pair_status(conn, pair.pair_id, "dissolved")
            await self._cancel_open(conn, repo, envelope, pair)

    async def _assign(
        self, conn: asyncpg.Connection, repo: Repository, trigger: Envelope, pair: Pair, plans: list[rules.Plan]
    ) -> None:
        changes = []
        for plan in plans:
            template_id, version = await self.views.current_template(conn, pair.programme_id, plan.kind)
            if plan.phase is Phase.POST:
                # The pre-questionnaire's version: the delta compares the same questions.
                version = await self.views.pre_version(conn, pair.pair_id) or version
            assigned = rules.assign(plan, pair, template_id, version, trigger.id, SYSTEM_ACTOR)
            aid = assigned.assignment_id
            changes.append(Change(aid, 0, trigger.tenant, pair.country, [assigned], [derived_id(aid, "assigned")]))
        await repo.save(*changes)

    async def _cancel_open(self, conn: asyncpg.Connection, repo: Repository, trigger: Envelope, pair: Pair) -> None:
        for assignment_id in await self.views.open_assignments(conn, pair.pair_id):
            assignment = await repo.get(Assignment, assignment_id)
            assert assignment is not None
            events = assignment.cancel(CancellationReason.PAIR_DISSOLVED, SYSTEM_ACTOR)
            ids = [derived_id(trigger.id, assignment_id)]
            await repo.save(Change(assignment_id, assignment.version, trigger.tenant, pair.country, events, ids))

    async def _release(self, conn: asyncpg.Connection, waiting_for: str) -> None:
        """Run the triggers that waited for ``waiting_for``, in arrival order."""
        for envelope in await self.references.take_deferred(conn, waiting_for):
            await self.handle(conn, envelope, registry.load(envelope))
