"""Enrollment events -> programmes, waves, participants (profiles only).

Each stream's events arrive in order (one key, one partition), so a row is
created by its stream's first event and updated by the later ones. Nothing
here touches a pair: enrolment facts reach health and the dashboards by joins.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from libs.events.contexts import enrollment as ev
from libs.events.envelope import Envelope


async def wave_status(status: str, conn: asyncpg.Connection, s: str, e: ev.WaveEvent) -> list[UUID]:
    await conn.execute(f"UPDATE {s}.waves SET status = $2 WHERE wave_id = $1", e.wave_id, status)
    return []


class EnrollmentFacts:
    """Enrollment events -> programmes, waves, participants."""

    schema: str

    async def on_ProgrammeCreated(self, conn: asyncpg.Connection, env: Envelope, e: ev.ProgrammeCreated) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"""INSERT INTO {s}.programmes (programme_id, organisation, name, mode) VALUES ($1, $2, $3, $4)
                ON CONFLICT (programme_id) DO UPDATE SET name = EXCLUDED.name, mode = EXCLUDED.mode""",
            e.programme_id, env.tenant, e.programme_name, e.mode.value,
        )
        return []

    async def on_WaveOpened(self, conn: asyncpg.Connection, env: Envelope, e: ev.WaveOpened) -> list[UUID]:
        s = self.schema
        await conn.execute(
            f"""INSERT INTO {s}.waves (wave_id, organisation, programme_id, name, region, country,
                                       starts_on, ends_on, target_pairs, status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open') ON CONFLICT (wave_id) DO NOTHING""",
            e.wave_id, env.tenant, e.programme_id, e.wave_name, e.region, e.country.upper(),
            e.starts_on, e.ends_on, e.target_pairs,
        )
        return []

    async def on_WaveEnrolmentClosed(self, conn: asyncpg.Connection, env: Envelope, e: ev.WaveEnrolmentClosed) -> list[UUID]:
        s = self.schema
        return await wave_status("enrolment_closed", conn, s, e)

    async def on_WaveEnded(self, conn: asyncpg.Connection, env: Envelope, e: ev.WaveEnded) -> list[UUID]:
        s = self.schema
        return await wave_status("ended", conn, s, e)

    async def on_ParticipantEnrolled(self, conn: asyncpg.Connection, env: Envelope, e: ev.ParticipantEnrolled) -> list[UUID]:
        s = self.schema
        p = e.profile
        await conn.execute(
            f"""INSERT INTO {s}.participants (participant_id, organisation, programme_id, wave_id, country, role,
                    entity, business_function, job_level, tenure_years, generation_band, learner_profile,
                    sessions_per_month, enrolled_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                ON CONFLICT (participant_id) DO NOTHING""",
            e.participant_id, env.tenant, e.programme_id, e.wave_id, e.country.upper(), e.role.value,
            p.entity, p.business_function, p.job_level, p.tenure_years,
            p.generation_band.value if p.generation_band else None, p.learner_profile.value,
            p.sessions_per_month, env.time,
        )
        return []

    async def on_ParticipantProfileUpdated(self, conn: asyncpg.Connection, env: Envelope, e: ev.ParticipantProfileUpdated) -> list[UUID]:
        s = self.schema
        p = e.profile
        await conn.execute(
            f"""UPDATE {s}.participants SET entity = $2, business_function = $3, job_level = $4, tenure_years = $5,
                    generation_band = $6, learner_profile = $7, sessions_per_month = $8
                WHERE participant_id = $1""",
            e.participant_id, p.entity, p.business_function, p.job_level, p.tenure_years,
            p.generation_band.value if p.generation_band else None, p.learner_profile.value, p.sessions_per_month,
        )
        return []

    async def on_ParticipantWithdrew(self, conn: asyncpg.Connection, env: Envelope, e: ev.ParticipantWithdrew) -> list[UUID]:
        s = self.schema
        await conn.execute(f"UPDATE {s}.participants SET withdrawn_at = $2 WHERE participant_id = $1", e.participant_id, env.time)
        return []

    async def on_MentorQualificationAssessed(self, conn: asyncpg.Connection, env: Envelope, e: ev.MentorQualificationAssessed) -> list[UUID]:
        s = self.schema
        await conn.execute(f"UPDATE {s}.participants SET qualified = $2 WHERE participant_id = $1", e.participant_id, e.qualified)
        return []

    async def on_ParticipantErased(self, conn: asyncpg.Connection, env: Envelope, e: ev.ParticipantErased) -> list[UUID]:
        """GDPR erasure: the profile goes (entity, function, tenure... could single
        a person out). Their pairs stay as counts under opaque ids; views that
        need both profiles leave such a pair out."""
        s = self.schema
        await conn.execute(f"DELETE FROM {s}.participants WHERE participant_id = $1", e.participant_id)
        return []
