"""The consumer that tells people what happened: it learns who they are
from enrollment (address, name, languages, time zone; sealed personal fields
the consumer runtime opens with the GDPR vault) and queues a message for
each event someone should hear of (matching's proposals and pairs, sessions'
meetings and budgets, evaluation's surveys), and the jobs due later (the
24 h notice, overdue reminders).

Dispatch is by the event's class name (``on_<EventClassName>``,
libs/messaging/dispatch.py); other events are ignored. Everything runs in the
consumer runtime's transaction, which applies each event once.
"""

from __future__ import annotations



import asyncpg

from libs.events.contexts import enrollment, evaluation, matching, sessions
from libs.events.envelope import Envelope
from libs.gdpr.personal import ERASED
from libs.messaging.dispatch import Consumer
from services.notifications.domain.kinds import Kind
from services.notifications.service_layer.messages import Meeting, Messages
from services.notifications.service_layer.scheduler import NOTICE, SESSION_REMINDER, SURVEY_OVERDUE, Scheduler

NAME = "notifications-people"

PAIR_KINDS: dict[type[matching.PairEvent], Kind] = {
    matching.PairProposed: Kind.PROPOSAL_MADE,
    matching.PairAccepted: Kind.PROPOSAL_ACCEPTED,
    matching.PairDeclined: Kind.PROPOSAL_DECLINED,
    matching.PairFormed: Kind.PAIR_FORMED,
    matching.PairDissolved: Kind.PAIR_DISSOLVED,
}


class People(Consumer):
    name = NAME
    contexts = ("enrollment", "matching", "sessions", "evaluation")

    def __init__(self, messages: Messages, scheduler: Scheduler, name: str = NAME) -> None:
        self.name = name  # the consumer group (tests give each environment its own)
        self.messages, self.scheduler = messages, scheduler
        s = self.schema = messages.schema
        self._sql_enrolled = f"""
            INSERT INTO {s}.recipients (participant_id, organisation, country, email, display_name, languages,
                                        time_zone, sequence)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (participant_id) DO UPDATE SET email = EXCLUDED.email, display_name = EXCLUDED.display_name,
                languages = EXCLUDED.languages, time_zone = EXCLUDED.time_zone, sequence = EXCLUDED.sequence
            WHERE {s}.recipients.sequence < EXCLUDED.sequence"""
        self._sql_updated = f"""
            UPDATE {s}.recipients SET email = coalesce($2, email), display_name = coalesce($3, display_name),
                   languages = $4, time_zone = $5, sequence = $6
            WHERE participant_id = $1 AND sequence < $6"""
        self._sql_meeting = f"""
            INSERT INTO {s}.meetings (session_id, starts_at, duration_minutes, sequence) VALUES ($1, $2, $3, $4)
            ON CONFLICT (session_id) DO UPDATE SET starts_at = EXCLUDED.starts_at,
                duration_minutes = EXCLUDED.duration_minutes, sequence = EXCLUDED.sequence
            WHERE {s}.meetings.sequence < EXCLUDED.sequence"""

    async def reset(self, conn: asyncpg.Connection) -> None:
        """Forget the people and meetings learned; messages and jobs stay (a
        rebuild must not write to anyone again)."""
        await conn.execute(f"TRUNCATE {self.schema}.recipients, {self.schema}.meetings")

    # -- enrollment: who people are -------------------------------------------

    async def on_ParticipantEnrolled(
        self, conn: asyncpg.Connection, envelope: Envelope, event: enrollment.ParticipantEnrolled
    ) -> None:
        if event.email == ERASED:  # replayed after the person was erased
            return
        profile = event.profile
        await conn.execute(
            self._sql_enrolled, event.participant_id, envelope.tenant, event.country, event.email,
            event.display_name, profile.languages, profile.time_zone, envelope.sequence,
        )

    async def on_ParticipantProfileUpdated(
        self, conn: asyncpg.Connection, envelope: Envelope, event: enrollment.ParticipantProfileUpdated
    ) -> None:
        email = event.email if event.email not in (None, ERASED) else None
        name = event.display_name if event.display_name not in (None, ERASED) else None
        await conn.execute(
            self._sql_updated, event.participant_id, email, name, event.profile.languages, event.profile.time_zone,
            envelope.sequence,
        )

    async def on_ParticipantErased(
        self, conn: asyncpg.Connection, envelope: Envelope, event: enrollment.ParticipantErased
    ) -> None:
        """GDPR: nothing more is written to the person; what waits for them, or
        names them (their pair partner's), is withdrawn, its body dropped."""
        s = self.schema
        await conn.execute(f"DELETE FROM {s}.recipients WHERE participant_id = $1", event.participant_id)
        await conn.execute(f"DELETE FROM {s}.preferences WHERE participant_id = $1", event.participant_id)
        await conn.execute(
            f"""UPDATE {s}.messages SET status = 'withdrawn', body = NULL, finished_at = $2
                WHERE (recipient_id = $1 OR $1 = ANY(named)) AND status = 'queued'""",
            event.participant_id,
            envelope.time,
        )

    # -- matching: proposals and pairs ----------------------------------------

    async def _pair(self, conn: asyncpg.Connection, envelope: Envelope, event: matching.PairEvent) -> None:
        await self.messages.to_pair(
            conn,
            organisation=envelope.tenant,
            country=event.country,
            kind=PAIR_KINDS[type(event)],
            source_event_id=str(envelope.id),
            members=(event.people.mentee_id, event.people.mentor_id),
            correlation_id=envelope.correlationid,
        )

    on_PairProposed = on_PairAccepted = on_PairDeclined = on_PairFormed = on_PairDissolved = _pair

    # -- sessions: meetings and the mentor's budget ---------------------------

    async def _meeting(
        self, conn: asyncpg.Connection, envelope: Envelope, event: sessions.SessionEvent, kind: Kind,
        meeting: Meeting,
    ) -> None:
        await self.messages.to_pair(
            conn,
            organisation=envelope.tenant,
            country=event.country,
            kind=kind,
            source_event_id=str(envelope.id),
            members=(event.mentee_id, event.mentor_id),
            meeting=meeting,
            correlation_id=envelope.correlationid,
        )

    async def _planned(
        self, conn: asyncpg.Connection, envelope: Envelope, event: sessions.SessionScheduled | sessions.SessionMoved,
        kind: Kind,
    ) -> None:
        meeting = Meeting(event.session_id, event.starts_at, event.duration_minutes, envelope.sequence - 1)
        await conn.execute(
            self._sql_meeting, event.session_id, event.starts_at, event.duration_minutes, envelope.sequence
        )
        await self._meeting(conn, envelope, event, kind, meeting)
        await self.scheduler.cancel(conn, event.session_id)
        due = event.starts_at - NOTICE
        if due > envelope.time:  # a meeting planned less than a day ahead gets no notice
            await self.scheduler.schedule(
                conn,
                f"{SESSION_REMINDER}:{event.session_id}:{envelope.sequence}",
                envelope.tenant,
                SESSION_REMINDER,
                event.session_id,
                due,
                {
                    "country": event.country,
                    "mentee_id": str(event.mentee_id),
                    "mentor_id": str(event.mentor_id),
                    "starts_at": event.starts_at.isoformat(),
                    "duration_minutes": event.duration_minutes,
                    "sequence": envelope.sequence - 1,
                },
            )

    async def on_SessionScheduled(
        self, conn: asyncpg.Connection, envelope: Envelope, event: sessions.SessionScheduled
    ) -> None:
        await self._planned(conn, envelope, event, Kind.SESSION_SCHEDULED)

    async def on_SessionMoved(self, conn: asyncpg.Connection, envelope: Envelope, event: sessions.SessionMoved) -> None:
        await self._planned(conn, envelope, event, Kind.SESSION_MOVED)

    async def on_SessionCancelled(
        self, conn: asyncpg.Connection, envelope: Envelope, event: sessions.SessionCancelled
    ) -> None:
        await self.scheduler.cancel(conn, event.session_id)
        row = await conn.fetchrow(
            f"SELECT starts_at, duration_minutes FROM {self.schema}.meetings WHERE session_id = $1", event.session_id
        )
        if row is None:  # its scheduling was never seen (a rebuilt consumer): nothing to take off a calendar
            return
        meeting = Meeting(event.session_id, row["starts_at"], row["duration_minutes"], envelope.sequence - 1, True)
        await self._meeting(conn, envelope, event, Kind.SESSION_CANCELLED, meeting)

    async def _over(self, conn: asyncpg.Connection, envelope: Envelope, event: sessions.SessionEvent) -> None:
        await self.scheduler.cancel(conn, event.session_id)

    on_SessionHeld = on_SessionNoShow = _over

    async def on_MentorBudgetExceeded(
        self, conn: asyncpg.Connection, envelope: Envelope, event: sessions.MentorBudgetExceeded
    ) -> None:
        await self.messages.to_one(
            conn,
            organisation=envelope.tenant,
            country=event.country,
            kind=Kind.BUDGET_EXCEEDED,
            source_event_id=str(envelope.id),
            participant_id=event.mentor_id,
            values={"total": event.total_minutes, "budget": event.budget_minutes},
            correlation_id=envelope.correlationid,
        )

    # -- evaluation: surveys --------------------------------------------------

    async def on_SurveyAssigned(
        self, conn: asyncpg.Connection, envelope: Envelope, event: evaluation.SurveyAssigned
    ) -> None:
        await self.messages.to_one(
            conn,
            organisation=envelope.tenant,
            country=event.country,
            kind=Kind.SURVEY_ASSIGNED,
            source_event_id=str(envelope.id),
            participant_id=event.participant_id,
            values={"due": event.due_at},
            correlation_id=envelope.correlationid,
        )
        await self.scheduler.schedule(
            conn,
            f"{SURVEY_OVERDUE}:{event.assignment_id}",
            envelope.tenant,
            SURVEY_OVERDUE,
            event.assignment_id,
            event.due_at,
            {
                "country": event.country,
                "participant_id": str(event.participant_id),
                "due_at": event.due_at.isoformat(),
                "reminder": 1,
            },
        )

    async def _survey_closed(self, conn: asyncpg.Connection, envelope: Envelope, event: evaluation.AssignmentEvent) -> None:
        await self.scheduler.cancel(conn, event.assignment_id)

    on_SurveyAnswered = on_AssignmentCancelled = _survey_closed


