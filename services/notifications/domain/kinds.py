"""What Binome tells people: the kinds of message, which of them a
participant may turn off, and the languages it writes in. Pure Python."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Kind(StrEnum):
    PROPOSAL_MADE = "proposal_made"
    PROPOSAL_ACCEPTED = "proposal_accepted"
    PROPOSAL_DECLINED = "proposal_declined"
    PAIR_FORMED = "pair_formed"
    PAIR_DISSOLVED = "pair_dissolved"
    SESSION_SCHEDULED = "session_scheduled"
    SESSION_MOVED = "session_moved"
    SESSION_CANCELLED = "session_cancelled"
    SESSION_REMINDER = "session_reminder"
    SURVEY_ASSIGNED = "survey_assigned"
    SURVEY_OVERDUE = "survey_overdue"
    BUDGET_EXCEEDED = "budget_exceeded"
    COMMITTEE_DIGEST = "committee_digest"


#: What a participant cannot turn off: a proposal waiting for their answer,
#: the pair they are in, and the meetings in their calendar.
ESSENTIAL: frozenset[Kind] = frozenset(
    {Kind.PROPOSAL_MADE, Kind.PAIR_FORMED, Kind.PAIR_DISSOLVED, Kind.SESSION_SCHEDULED, Kind.SESSION_MOVED,
     Kind.SESSION_CANCELLED}
)
#: Kinds written to a committee (its contacts), never to a participant.
COMMITTEE_KINDS: frozenset[Kind] = frozenset({Kind.COMMITTEE_DIGEST})
NON_ESSENTIAL: frozenset[Kind] = frozenset(Kind) - ESSENTIAL - COMMITTEE_KINDS

#: Kinds whose message carries a calendar invite.
WITH_INVITE: frozenset[Kind] = frozenset({Kind.SESSION_SCHEDULED, Kind.SESSION_MOVED, Kind.SESSION_CANCELLED})

#: Languages there are templates for (ISO 639-1); the first is the fallback.
LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "pt", "ja")
DEFAULT_LANGUAGE = LANGUAGES[0]


def language_for(chosen: str | None, spoken: Iterable[str]) -> str:
    """The language of a participant's messages: the one they chose, else the
    first language of their enrolment profile Binome writes in, else English."""
    for language in ([chosen] if chosen else []) + [s.lower() for s in spoken]:
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


def wanted(kind: Kind, muted: Iterable[str]) -> bool:
    """Does the participant still want messages of ``kind``?"""
    return kind in ESSENTIAL or kind.value not in set(muted)
