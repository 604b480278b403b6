"""The HR directory's events fed to enrollment and matching, as the directory
service would publish them (its own event store, outbox and relay), on the
real stack: enrollment's directory consumer and matching's reporting lines
read topic ``binome.directory.events``; enrollment's events then reach
matching's candidate pool (tests/support/matching.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from libs.events.contexts import directory as di
from libs.events.contexts.enrollment import Actor
from libs.events.registry import new_envelope
from libs.eventstore.migrations import migrate
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.dispatch import Consumer
from libs.messaging.relay import OutboxRelay
from services.enrollment.bootstrap import Enrollment
from services.matching.consumers.reporting_lines import ReportingLines
from tests.support.kafka import wait_for
from tests.support.matching import MatchingEnv, matching_env

HR_SYSTEM = Actor(subject="scim-client", client_id="workday")


@dataclass
class DirectoryEnv:
    matching: MatchingEnv
    store: EventStore  # the directory context's log
    consumers: list[str]  # enrollment's directory feed, matching's reporting lines
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # employee number -> last state

    @property
    def enrollment(self):
        return self.matching.enrollment

    async def _append(self, person_id: uuid.UUID, event: di.PersonEvent, country: str | None) -> None:
        stream = await self.store.read_stream(str(person_id))
        envelope = new_envelope(
            event, service="directory", subject=str(person_id), tenant="org-a", country=country
        )
        await self.store.append(str(person_id), len(stream), [envelope])

    async def provision(
        self, number: str, *, manager: str | None = None, active: bool | None = True, **profile: Any
    ) -> uuid.UUID:
        """A person with employee number ``number`` (and manager by number)."""
        person_id = uuid.uuid4()
        state = {
            "person_id": person_id,
            "identity": {
                "user_name": f"{number.lower()}@example.com",
                "employee_number": number,
                "display_name": f"Dir {number}",
                "emails": [{"value": f"{number.lower()}@example.com", "type": "work", "primary": True}],
            },
            "manager_id": str(self.people[manager]["person_id"]) if manager else None,
            "profile": {
                "country": "FR",
                "entity": "Acme France",
                "job_level": 10,
                "business_function": "finance",
                "languages": ["fr", "en"],
                "department": "Treasury",
                "timezone": "Europe/Paris",
                **profile,
            },
            "active": active,
        }
        self.people[number] = state
        await self._append(person_id, di.PersonProvisioned(**state, actor=HR_SYSTEM), state["profile"]["country"])
        return person_id

    async def update(self, number: str, *, manager: str | None | bool = False, **profile: Any) -> None:
        """Change profile fields (and the manager, by number, when given)."""
        state = self.people[number]
        changed = [f"profile.{k}" for k in profile]
        state["profile"] = {**state["profile"], **profile}
        if manager is not False:
            state["manager_id"] = str(self.people[manager]["person_id"]) if manager else None
            changed.append("manager_id")
        event = di.PersonUpdated(**state, changed=changed, actor=HR_SYSTEM)
        await self._append(state["person_id"], event, state["profile"]["country"])

    async def deactivate(self, number: str) -> None:
        state = self.people[number]
        state["active"] = False
        event = di.PersonDeactivated(person_id=state["person_id"], cause="active_false", actor=HR_SYSTEM)
        await self._append(state["person_id"], event, state["profile"]["country"])

    async def reactivate(self, number: str) -> None:
        state = self.people[number]
        state["active"] = True
        await self._append(state["person_id"], di.PersonReactivated(person_id=state["person_id"], actor=HR_SYSTEM), None)

    async def erase(self, number: str) -> None:
        state = self.people[number]
        await self._append(state["person_id"], di.PersonErased(person_id=state["person_id"], actor=HR_SYSTEM), None)
        await self.enrollment.vault.erase(state["person_id"], None)

    async def synced(self) -> None:
        """Wait until both directory consumers applied every directory event,
        then until matching applied every enrollment event."""
        d, e, m = self.store.schema, self.enrollment.schema, self.matching.schema

        async def caught_up(schema: str, consumer: str) -> bool:
            return await self.matching.pool.fetchval(
                f"""SELECT NOT EXISTS (SELECT 1 FROM {d}.events ev WHERE NOT EXISTS (
                        SELECT 1 FROM {schema}.applied_events a WHERE a.consumer = $1 AND a.event_id = ev.event_id))""",
                consumer,
            )

        await wait_for(lambda: caught_up(e, self.consumers[0]))
        await wait_for(lambda: caught_up(m, self.consumers[1]))
        await self.matching.synced()


def _own_group(consumer: Consumer) -> Consumer:
    consumer.name = f"{consumer.name}-{uuid.uuid4().hex[:6]}"  # a consumer group of its own
    return consumer


async def directory_env(pool: asyncpg.Pool, data_dir: Path, bootstrap: str) -> AsyncIterator[DirectoryEnv]:
    async for matching in matching_env(pool, data_dir, bootstrap):
        enrollment = matching.enrollment
        schema = f"t_{uuid.uuid4().hex[:12]}"
        async with pool.acquire() as conn:
            await migrate(conn, schema)
        store = EventStore(
            pool, schema, topic_prefix=enrollment.topic_prefix, service="directory", personal=enrollment.store.personal
        )
        feed = _own_group(Enrollment(pool, enrollment.store, enrollment.vault).directory_feed())
        lines = _own_group(ReportingLines(matching.schema))
        stop = asyncio.Event()
        relay = OutboxRelay(pool, schema, bootstrap, service="directory", poll_interval_s=0.05)
        runners = [
            ConsumerRunner(
                pool, target, consumer, bootstrap, service=service, topic_prefix=enrollment.topic_prefix,
                session_timeout_ms=1000, fetch_max_wait_ms=50, retry_backoff_s=0.01, personal=enrollment.store.personal,
            )
            for target, consumer, service in ((enrollment.schema, feed, "enrollment"), (matching.schema, lines, "matching"))
        ]
        tasks = [asyncio.create_task(relay.run(stop)), *(asyncio.create_task(r.run(stop)) for r in runners)]
        try:
            for runner in runners:
                await runner.wait_assigned()
            yield DirectoryEnv(matching, store, [feed.name, lines.name])
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await pool.execute(f"DROP SCHEMA {schema} CASCADE")
