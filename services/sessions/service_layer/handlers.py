"""Command handlers: load what the command acts on, check the caller may act
on it, let the domain decide, save the new events (and the read tables) in
the caller's transaction.

Who acts: a participant acts as the member of the pair it is (mentee or
mentor); an HR admin or the pair's regional committee acts as ``hr``.
Anyone else, or another organisation's or country's object, is ``NotFound``.
Commands on a pair's calendar take a lock per person (``lock_people``) before
they read the sessions that may overlap, so two concurrent commands cannot
both find the same slot free, and a mentor's monthly budget stream is never
raced.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE, Principal
from libs.domain.commands import actor_of, check_version
from libs.domain.repository import UnitOfWork
from libs.events.contexts.sessions import Member
from services.sessions.domain.budget import MentorMonth, budget_stream
from services.sessions.domain.check_in import CheckIn
from services.sessions.domain.errors import NotFound
from services.sessions.domain.session import Session
from services.sessions.domain.settings import ProgrammeRules
from services.sessions.domain.values import Pair, Slot, month_of
from services.sessions.service_layer import commands
from services.sessions.service_layer.views import participant_id_of


def acting_member(principal: Principal, pair: Pair) -> Member:
    """Who the caller is in this pair; NotFound if it may not act on it."""
    me = participant_id_of(principal)
    member = None if me is None else pair.member(str(me))
    if member is not None:
        return member
    if principal.has_role(HR_ADMIN, REGIONAL_COMMITTEE) and principal.can_see(pair.organisation, pair.country):
        return Member.HR
    raise NotFound("pair", pair.pair_id)


async def load_pair(uow: UnitOfWork, principal: Principal, pair_id: UUID) -> tuple[Pair, Member]:
    pair = await uow.views.pair(uow.conn, pair_id)
    if pair is None:
        raise NotFound("pair", pair_id)
    return pair, acting_member(principal, pair)


async def load_session(
    uow: UnitOfWork, principal: Principal, session_id: UUID, expected_version: int | None
) -> tuple[Session, Pair, Member]:
    """The session, its pair and the caller's part in it, with the two
    people's lock held."""
    session = await uow.repo.get(Session, str(session_id))
    pair = None if session is None else await uow.views.pair(uow.conn, session.pair_id)
    if session is None or pair is None or session.organisation != principal.organisation:
        raise NotFound("session", session_id)
    try:
        member = acting_member(principal, pair)
    except NotFound:
        raise NotFound("session", session_id) from None
    check_version(session, expected_version)
    await uow.views.lock_people(uow.conn, pair.people)
    return session, pair, member


# -- sessions ---------------------------------------------------------------------------


async def schedule(uow: UnitOfWork, principal: Principal, cmd: commands.Schedule) -> UUID:
    pair, member = await load_pair(uow, principal, cmd.pair_id)
    await uow.views.lock_people(uow.conn, pair.people)
    slot = Slot(cmd.starts_at, cmd.duration_minutes)
    session = Session.schedule(
        session_id=uuid4(),
        pair=pair,
        by=member,
        slot=slot,
        session_format=cmd.session_format,
        planned_topics=cmd.planned_topics,
        themes=await uow.views.themes(uow.conn, pair.programme_id),
        busy=await uow.views.busy(uow.conn, pair.people, slot),
        now=uow.now,
        actor=actor_of(principal),
    )
    await uow.repo.add(session)
    return session.session_id


async def move(uow: UnitOfWork, principal: Principal, cmd: commands.Move) -> UUID:
    session, pair, member = await load_session(uow, principal, cmd.session_id, cmd.expected_version)
    slot = Slot(cmd.starts_at, cmd.duration_minutes or session.slot.minutes)
    busy = await uow.views.busy(uow.conn, pair.people, slot)
    session.move(pair=pair, by=member, slot=slot, busy=busy, now=uow.now, actor=actor_of(principal))
    await uow.repo.add(session)
    return session.session_id


async def cancel(uow: UnitOfWork, principal: Principal, cmd: commands.Cancel) -> UUID:
    session, pair, member = await load_session(uow, principal, cmd.session_id, cmd.expected_version)
    rules = await uow.views.rules(uow.conn, pair.programme_id)
    session.cancel(
        by=member,
        reason=cmd.reason,
        late_threshold_hours=rules.late_cancellation_hours,
        now=uow.now,
        actor=actor_of(principal),
    )
    await uow.repo.add(session)
    return session.session_id


async def hold(uow: UnitOfWork, principal: Principal, cmd: commands.Hold) -> UUID:
    """The session took place; its minutes and the preparation count in the
    mentor's budget of the month it took place in, in the same transaction."""
    session, pair, _ = await load_session(uow, principal, cmd.session_id, cmd.expected_version)
    actor = actor_of(principal)
    session.hold(
        actual_minutes=cmd.actual_minutes,
        preparation_minutes=cmd.preparation_minutes,
        topics_covered=cmd.topics_covered,
        note=cmd.note,
        themes=await uow.views.themes(uow.conn, pair.programme_id),
        sequence_in_pair=await uow.views.held_in_pair(uow.conn, pair.pair_id) + 1,
        now=uow.now,
        actor=actor,
    )
    month = month_of(session.slot.starts_at)
    mentor_month = await uow.repo.get(MentorMonth, budget_stream(pair.mentor_id, month)) or MentorMonth.start(
        organisation=pair.organisation,
        mentor_id=pair.mentor_id,
        programme_id=pair.programme_id,
        country=pair.mentor_country,
        month=month,
    )
    rules = await uow.views.rules(uow.conn, pair.programme_id)
    mentor_month.log(
        pair_id=pair.pair_id,
        session_id=session.session_id,
        session_minutes=cmd.actual_minutes,
        preparation_minutes=cmd.preparation_minutes,
        budget_minutes=rules.monthly_budget_minutes,
        actor=actor,
    )
    await uow.repo.add(session, mentor_month)
    return session.session_id


async def mark_no_show(uow: UnitOfWork, principal: Principal, cmd: commands.MarkNoShow) -> UUID:
    session, _, member = await load_session(uow, principal, cmd.session_id, cmd.expected_version)
    session.no_show(absent=cmd.absent, reported_by=member, now=uow.now, actor=actor_of(principal))
    await uow.repo.add(session)
    return session.session_id


# -- check-ins and rules ------------------------------------------------------------------


async def record_check_in(uow: UnitOfWork, principal: Principal, cmd: commands.RecordCheckIn) -> UUID:
    pair, member = await load_pair(uow, principal, cmd.pair_id)
    check_in = CheckIn.record_for(
        check_in_id=uuid4(),
        pair=pair,
        member=member,
        mood=cmd.mood,
        blockers=cmd.blockers,
        next_step=cmd.next_step,
        actor=actor_of(principal),
    )
    await uow.repo.add(check_in)
    return check_in.check_in_id


async def set_rules(uow: UnitOfWork, principal: Principal, cmd: commands.SetRules) -> UUID:
    """A programme's session rules; the programme must be known (from
    enrollment's events) and of the caller's organisation."""
    if await uow.views.programme_organisation(uow.conn, cmd.programme_id) != principal.organisation:
        raise NotFound("programme", cmd.programme_id)
    current = await uow.repo.get(ProgrammeRules, str(cmd.programme_id))
    rules = current or ProgrammeRules.defaults(principal.organisation, cmd.programme_id)
    rules.change(cmd.rules, actor_of(principal))
    await uow.repo.add(rules)
    return cmd.programme_id
