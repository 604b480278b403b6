"""The Pair aggregate: every legal transition and the illegal ones (409s)."""

from __future__ import annotations

import uuid

import pytest

from libs.events.contexts.enrollment import Actor
from libs.events.contexts.matching import (
    DissolutionReason,
    PairAccepted,
    PairCompleted,
    PairDeclined,
    PairDissolved,
    PairFormed,
    PairProposed,
    PairRef,
    ProposalOrigin,
    Side,
)
from services.matching.domain.errors import IllegalTransition
from services.matching.domain.pair import Pair, PairStatus

HR = Actor(subject="hr-1")


def proposed() -> Pair:
    people = PairRef(
        mentee_id=uuid.uuid4(),
        mentor_id=uuid.uuid4(),
        mentee_wave_id=uuid.uuid4(),
        mentor_wave_id=uuid.uuid4(),
        mentee_country="FR",
        mentor_country="DE",
    )
    pair = Pair.propose(
        pair_id=uuid.uuid4(),
        organisation="org",
        programme_id=uuid.uuid4(),
        people=people,
        origin=ProposalOrigin.RUN,
        score=71.5,
        breakdown=[],
        actor=HR,
    )
    return pair


def kinds(pair: Pair) -> list[type]:
    return [type(e) for e in pair.take_pending()]


def test_a_proposal_lives_in_the_mentees_country_and_wave() -> None:
    pair = proposed()
    event = pair.pending[0]
    assert isinstance(event, PairProposed)
    assert event.country == "FR" and event.wave_id == event.people.mentee_wave_id
    assert pair.status is PairStatus.PROPOSED and pair.version == 1 and pair.expected_version == 0


def test_formed_only_when_both_people_accepted() -> None:
    pair = proposed()
    pair.take_pending()
    pair.accept(Side.MENTEE, Actor(subject=str(pair.proposal.people.mentee_id)))
    assert pair.status is PairStatus.PROPOSED
    pair.accept(Side.MENTOR, Actor(subject=str(pair.proposal.people.mentor_id)))
    events = pair.take_pending()
    assert [type(e) for e in events] == [PairAccepted, PairAccepted, PairFormed]
    assert events[-1].confirmed_by is Side.MENTOR and events[-1].score == 71.5
    assert pair.status is PairStatus.FORMED


def test_hr_confirmation_forms_the_pair_at_once() -> None:
    pair = proposed()
    pair.take_pending()
    pair.accept(Side.HR, HR)
    assert kinds(pair) == [PairAccepted, PairFormed]
    assert pair.status is PairStatus.FORMED


def test_a_side_accepts_once() -> None:
    pair = proposed()
    pair.accept(Side.MENTEE, HR)
    with pytest.raises(IllegalTransition):
        pair.accept(Side.MENTEE, HR)


@pytest.mark.parametrize("end", ["decline", "form_then_dissolve", "form_then_complete"])
def test_an_ended_pair_accepts_nothing_more(end: str) -> None:
    pair = proposed()
    if end == "decline":
        pair.decline(Side.MENTOR, HR, "busy")
    else:
        pair.accept(Side.HR, HR)
        if end == "form_then_dissolve":
            pair.dissolve(DissolutionReason.NO_CHEMISTRY, Side.HR, HR)
        else:
            pair.complete(HR)
    for action in (
        lambda: pair.accept(Side.MENTEE, HR),
        lambda: pair.decline(Side.HR, HR),
        lambda: pair.dissolve(DissolutionReason.OTHER, Side.HR, HR),
        lambda: pair.complete(HR),
    ):
        with pytest.raises(IllegalTransition):
            action()


def test_only_a_formed_pair_is_dissolved_or_completed() -> None:
    pair = proposed()
    with pytest.raises(IllegalTransition):
        pair.dissolve(DissolutionReason.OTHER, Side.HR, HR)
    with pytest.raises(IllegalTransition):
        pair.complete(HR)


def test_rebuild_folds_the_stream_to_the_same_state() -> None:
    pair = proposed()
    pair.accept(Side.HR, HR)
    pair.dissolve(DissolutionReason.AVAILABILITY, Side.MENTEE, HR, "moved")
    events = pair.take_pending()
    assert [type(e) for e in events] == [PairProposed, PairAccepted, PairFormed, PairDissolved]
    again = Pair.rebuild("org", events)
    assert again.status is PairStatus.DISSOLVED and again.version == 4 and again.expected_version == 4
    assert again.id == pair.id and again.accepted == {Side.HR}


def test_side_of_names_each_person() -> None:
    pair = proposed()
    people = pair.proposal.people
    assert pair.side_of(str(people.mentee_id)) is Side.MENTEE
    assert pair.side_of(str(people.mentor_id)) is Side.MENTOR
    assert pair.side_of(str(uuid.uuid4())) is None


def test_completion_and_decline_record_their_events() -> None:
    pair = proposed()
    pair.take_pending()
    pair.decline(Side.MENTOR, HR, "no time")
    (declined,) = pair.take_pending()
    assert isinstance(declined, PairDeclined) and declined.side is Side.MENTOR and declined.note == "no time"
    other = proposed()
    other.accept(Side.HR, HR)
    other.complete(HR)
    assert kinds(other)[-1] is PairCompleted
