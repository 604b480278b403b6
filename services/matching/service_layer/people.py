"""Pool rows as the domain's participants, policy and pair references."""

from __future__ import annotations

from typing import Any
from libs.events.contexts.matching import PairRef
from services.matching.adapters.mapping import to_participant
from services.matching.domain import Participant


def mentee_of(row: dict[str, Any]) -> Participant:
    return to_participant(row, 0, row["starts_on"])


def mentor_of(row: dict[str, Any], taken: dict[str, int]) -> Participant:
    """A mentor with its *remaining* seats as capacity."""
    return to_participant(row, capacity_of(row) - taken.get(str(row["participant_id"]), 0), row["starts_on"])


def whole_mentor(row: dict[str, Any]) -> Participant:
    """A mentor with its whole capacity (seats taken are counted apart)."""
    return to_participant(row, capacity_of(row), row["starts_on"])


def capacity_of(row: dict[str, Any]) -> int:
    return int(row["profile"].get("capacity") or 1)


def pair_ref(mentee: dict[str, Any], mentor: dict[str, Any]) -> PairRef:
    return PairRef(
        mentee_id=mentee["participant_id"],
        mentor_id=mentor["participant_id"],
        mentee_wave_id=mentee["wave_id"],
        mentor_wave_id=mentor["wave_id"],
        mentee_country=mentee["country"],
        mentor_country=mentor["country"],
    )


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["participant_id"]): r for r in rows}
