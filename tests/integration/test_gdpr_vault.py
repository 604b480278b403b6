"""Crypto-shredding on a real PostgreSQL: personal fields are sealed with the
participant's (or the pair's) key, open for readers while the key exists, and
read as ERASED for ever once the participant is erased."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from libs.events.contexts.enrollment import Actor, ParticipantEnrolled, Role
from libs.events.contexts.matching import PairDissolved, PairRef, DissolutionReason, Side
from libs.events.registry import new_envelope, registry
from libs.gdpr.masters import MasterKeys
from libs.gdpr.personal import ERASED, PersonalData
from libs.gdpr.vault import KeyShredded, KeyVault, migrate_vault
from tests.support.enrollment_domain import profile

CANARY = "canary-7f3a9c"


@pytest.fixture
async def vault(pool: asyncpg.Pool, tmp_path) -> AsyncIterator[KeyVault]:
    schema = f"v_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        await migrate_vault(conn, schema)
    try:
        yield KeyVault(pool, schema, MasterKeys(keys={}, country_regions={"FR": "emea"}, dev_dir=tmp_path))
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


def enrolled(participant_id: uuid.UUID) -> ParticipantEnrolled:
    return ParticipantEnrolled(
        actor=Actor(subject="hr-1"),
        participant_id=participant_id,
        programme_id=uuid.uuid4(),
        wave_id=uuid.uuid4(),
        country="FR",
        role=Role.MENTEE,
        profile=profile(Role.MENTEE),
        employee_ref="E-42",
        display_name=f"Grace {CANARY}",
        email=f"{CANARY}@example.org",
        motivation="learn",
    )


def envelope_of(payload, subject: uuid.UUID):
    return new_envelope(payload, service="enrollment", subject=str(subject), tenant="org-1", country="FR")


async def test_personal_fields_are_sealed_then_opened(pool: asyncpg.Pool, vault: KeyVault) -> None:
    personal = PersonalData(vault)
    pid = uuid.uuid4()
    [sealed] = await personal.seal([envelope_of(enrolled(pid), pid)])
    wire = orjson.dumps(sealed.model_dump(mode="json")).decode()
    assert CANARY not in wire and "E-42" not in wire
    assert sealed.data["profile"] == enrolled(pid).model_dump(mode="json")["profile"]  # not personal: readable
    [opened] = await personal.open([sealed])
    event = registry.load(opened)
    assert event.display_name == f"Grace {CANARY}" and event.employee_ref == "E-42"


async def test_a_reader_of_no_personal_value_gets_none_and_never_asks_the_vault(
    pool: asyncpg.Pool, vault: KeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    personal = PersonalData(vault)
    pid = uuid.uuid4()
    [sealed] = await personal.seal([envelope_of(enrolled(pid), pid)])

    class Statistics:  # a consumer as insights is: it says it reads no personal value
        opens_personal_values = False

    async def refused(*args, **kwargs):
        raise AssertionError("the vault was asked")

    monkeypatch.setattr(vault, "keys", refused)
    [read] = await personal.open_for(Statistics(), [sealed])
    event = registry.load(read)  # loads as an erased person's event does
    assert event.display_name == ERASED and event.email == ERASED and event.employee_ref == ERASED
    assert read.data["profile"] == sealed.data["profile"]  # not personal: as it was
    assert CANARY not in orjson.dumps(read.model_dump(mode="json")).decode()
    with pytest.raises(AssertionError, match="the vault was asked"):
        await personal.open_for(object(), [sealed])  # a reader that does not say: opened, as before


async def test_erasure_shreds_the_key_for_ever(pool: asyncpg.Pool, vault: KeyVault) -> None:
    personal = PersonalData(vault)
    pid, other = uuid.uuid4(), uuid.uuid4()
    sealed = await personal.seal([envelope_of(enrolled(pid), pid), envelope_of(enrolled(other), other)])
    assert await vault.erase(pid) == [pid]
    assert await vault.is_erased(pid)
    gone, kept = await personal.open(sealed)
    with pytest.raises(KeyShredded):
        await vault.key_for(pid, [pid], "FR")
    with pytest.raises(KeyShredded):
        await personal.seal([envelope_of(enrolled(pid), pid)])
    erased = registry.load(gone)  # the event still loads: replays keep working
    assert erased.display_name == ERASED and erased.email == ERASED and erased.employee_ref == ERASED
    assert CANARY not in orjson.dumps(gone.model_dump(mode="json")).decode()
    assert registry.load(kept).display_name == f"Grace {CANARY}"


async def test_a_pair_key_is_shredded_by_either_member(pool: asyncpg.Pool, vault: KeyVault) -> None:
    personal = PersonalData(vault)
    mentee, mentor, pair = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    wave = uuid.uuid4()
    dissolved = PairDissolved(
        actor=Actor(subject="hr-1"),
        pair_id=pair,
        programme_id=uuid.uuid4(),
        wave_id=wave,
        country="FR",
        people=PairRef(
            mentee_id=mentee, mentor_id=mentor, mentee_wave_id=wave, mentor_wave_id=wave,
            mentee_country="FR", mentor_country="FR",
        ),
        reason=DissolutionReason.NO_CHEMISTRY,
        side=Side.MENTEE,
        note=f"we never clicked {CANARY}",
    )
    [sealed] = await personal.seal([envelope_of(dissolved, pair)])
    assert CANARY not in str(sealed.data)
    [opened] = await personal.open([sealed])
    assert registry.load(opened).note == f"we never clicked {CANARY}"
    assert await vault.erase(mentor) == [pair]
    [after] = await personal.open([sealed])
    assert registry.load(after).note == ERASED


async def test_after_an_erasure_what_names_no_personal_value_needs_no_key(pool: asyncpg.Pool, vault: KeyVault) -> None:
    """A pair dissolved because a member was erased: recorded after the pair's
    key was shredded (or before it was ever made), it must not need it."""
    personal = PersonalData(vault)
    mentee, mentor, met, never_met = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await vault.key_for(met, [mentee, mentor], "FR")  # the pair met: its notes were sealed
    assert await vault.erase(mentee) == [met]

    def dissolved(pair: uuid.UUID, note: str | None) -> PairDissolved:
        wave = uuid.uuid4()
        people = PairRef(mentee_id=mentee, mentor_id=mentor, mentee_wave_id=wave, mentor_wave_id=wave,
                         mentee_country="FR", mentor_country="FR")  # fmt: skip
        return PairDissolved(
            actor=Actor(subject="system"), pair_id=pair, programme_id=uuid.uuid4(), wave_id=wave, country="FR",
            people=people, reason=DissolutionReason.LEFT_PROGRAMME, side=Side.MENTEE, note=note,
        )  # fmt: skip

    # No note, or only what an erased note opened as: stored as it is, no key asked for or made.
    envelopes = [envelope_of(dissolved(p, n), p) for p in (met, never_met) for n in (None, ERASED)]
    assert await personal.seal(envelopes) == envelopes
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {vault.schema}.data_keys") == 0
    # A note to seal is refused: with the shredded key, and with a new key an erased person would own.
    for pair in (met, never_met):
        with pytest.raises(KeyShredded):
            await personal.seal([envelope_of(dissolved(pair, f"a note {CANARY}"), pair)])
    with pytest.raises(KeyShredded):
        await vault.key_for(uuid.uuid4(), [mentor, mentee], "FR")
    assert await vault.key_for(uuid.uuid4(), [mentor], "FR")  # the survivor's keys are still made


async def test_a_key_created_by_two_writers_at_once_is_one_key(pool: asyncpg.Pool, vault: KeyVault) -> None:
    pid = uuid.uuid4()

    async def create() -> bytes:
        return await vault.key_for(pid, [pid], "FR")

    keys = await asyncio.gather(*(create() for _ in range(8)))
    assert len(set(keys)) == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {vault.schema}.data_keys") == 1
        assert await conn.fetchval(f"SELECT region FROM {vault.schema}.data_keys") == "emea"


async def test_a_key_is_found_or_made_in_one_statement(pool: asyncpg.Pool, vault: KeyVault) -> None:
    """One round trip whether the key is new (each enrolment makes its
    participant's: a look-up first would always miss) or stored already
    (it comes back as stored, not replaced by the key wrapped for the statement)."""
    pid = uuid.uuid4()
    sent: list[str] = []
    async with pool.acquire() as conn:
        await vault.key_for(uuid.uuid4(), [pid], "FR", conn=conn)  # asyncpg learns the types once per connection
        conn.add_query_logger(lambda logged: sent.append(logged.query))  # called soon after, from the loop
        made = await vault.key_for(pid, [pid], "FR", conn=conn)
        await asyncio.sleep(0.01)
        assert len(sent) == 1, sent
        again = await vault.key_for(pid, [pid], "FR", conn=conn)
        await asyncio.sleep(0.01)
        assert len(sent) == 2, sent
    assert again == made
    assert (await vault.keys([pid]))[pid] == made
    await vault.erase(pid)
    with pytest.raises(KeyShredded):
        await vault.key_for(pid, [pid], "FR")


async def test_writers_in_transactions_never_wait_for_a_second_connection(
    database_url: str, schema: str, tmp_path
) -> None:
    """Every writer holds its pooled connection in a transaction while the store
    seals its personal fields: the vault must use that same connection, or with
    every connection taken all writers wait on each other for ever."""
    from libs.eventstore.store import EventStore

    small = await asyncpg.create_pool(database_url, min_size=2, max_size=2)
    vault_schema = f"v_{uuid.uuid4().hex[:12]}"
    try:
        async with small.acquire() as conn:
            await migrate_vault(conn, vault_schema)
        vault = KeyVault(small, vault_schema, MasterKeys(keys={}, dev_dir=tmp_path))
        store = EventStore(small, schema, service="enrollment", personal=PersonalData(vault))

        async def write() -> None:
            pid = uuid.uuid4()
            async with small.acquire() as conn, conn.transaction():
                await store.append(str(pid), 0, [envelope_of(enrolled(pid), pid)], conn=conn)
                [read] = await store.read_stream(str(pid), conn=conn)
                assert registry.load(read).display_name == f"Grace {CANARY}"

        # A liveness bound, not a speed figure: a deadlock never finishes.
        await asyncio.wait_for(asyncio.gather(*(write() for _ in range(6))), timeout=60)
        assert await small.fetchval(f"SELECT count(*) FROM {vault_schema}.data_keys") == 6
    finally:
        await small.execute(f"DROP SCHEMA IF EXISTS {vault_schema} CASCADE")
        await small.close()


async def test_a_vault_in_its_own_database_serves_a_store_in_another(
    pool: asyncpg.Pool, database_url: str, schema: str, tmp_path
) -> None:
    """docker-compose.yml: a database per service, one vault database for all."""
    from libs.embedded.postgres import ensure_database
    from libs.eventstore.store import EventStore
    from libs.runtime.platform import vault_pool_scope
    from libs.settings import Settings

    vault_url = await ensure_database(database_url, "binome_test_vault")
    settings = Settings(data_dir=tmp_path, vault_database_url=vault_url, vault_schema=f"v_{uuid.uuid4().hex[:12]}")
    async with vault_pool_scope(settings, pool) as vault_pool:
        assert vault_pool is not pool
        async with vault_pool.acquire() as conn:
            await migrate_vault(conn, settings.vault_schema)
        vault = KeyVault(vault_pool, settings.vault_schema, MasterKeys.from_settings(settings))
        store = EventStore(pool, schema, service="enrollment", personal=PersonalData(vault))
        pid = uuid.uuid4()
        async with pool.acquire() as conn, conn.transaction():
            await store.append(str(pid), 0, [envelope_of(enrolled(pid), pid)], conn=conn)
        stored = await pool.fetchval(f"SELECT envelope::text FROM {schema}.events")
        assert CANARY not in stored
        [read] = await store.read_stream(str(pid))
        assert registry.load(read).email == f"{CANARY}@example.org"
        assert await vault_pool.fetchval(f"SELECT count(*) FROM {settings.vault_schema}.data_keys") == 1
        await vault_pool.execute(f"DROP SCHEMA {settings.vault_schema} CASCADE")
