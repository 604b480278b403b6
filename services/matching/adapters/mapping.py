"""Enrollment's vocabulary -> the matching domain's.

The candidate pool stores what enrollment events said (profiles, programme
settings); this module turns them into the domain's ``Participant`` and
``MatchingPolicy``. Kept in one place so that a change of either side's
vocabulary is a change here only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.events.contexts.enrollment import ParticipantProfile, ProgrammeMode, ProgrammeSettings
from services.matching.domain import Criterion, MatchingPolicy, Objective, Participant, Role

#: Enrollment's default intention codes -> the labels of the domain's
#: compatibility table. A programme's own codes pass through unchanged (they
#: score by the domain's "same intention" credit only).
INTENTION_LABELS = {
    "understand_businesses": "understand_company_businesses",
    "progress_own_field": "progress_in_own_field",
    "grow_network": "build_network",
    "understand_digital_uses": "understand_digital_culture",
}

#: Programme weight name -> criterion. The generation criterion has no
#: programme weight (enrollment does not offer it), so it weighs 0.
WEIGHT_CRITERIA = {
    "theme_fit": Criterion.THEMES,
    "learner_profile": Criterion.LEARNER_PROFILE,
    "intentions": Criterion.INTENTIONS,
    "business_function": Criterion.FUNCTION,
    "language": Criterion.LANGUAGE,
    "time_zone": Criterion.TIME_ZONE,
    "cross_entity": Criterion.CROSS_ENTITY,
    "availability": Criterion.AVAILABILITY,
}


def utc_offset_hours(time_zone: str, on: date) -> float:
    """The zone's UTC offset at noon on ``on`` (the wave's start): a fixed
    instant, so that the same inputs always score the same."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return 0.0
    offset = datetime.combine(on, time(12), tzinfo=UTC).astimezone(zone).utcoffset()
    return offset.total_seconds() / 3600 if offset is not None else 0.0


def to_policy(mode: str, settings: dict[str, Any], objective: str | None = None) -> MatchingPolicy:
    """The programme's matching settings; ``objective`` overrides the programme's."""
    parsed = ProgrammeSettings.model_validate(settings)
    rule = parsed.seniority_rule
    enforced = rule.enforced and ProgrammeMode(mode) is ProgrammeMode.REVERSE
    weights = {criterion: getattr(parsed.matching.weights, name) for name, criterion in WEIGHT_CRITERIA.items()}
    return MatchingPolicy(
        weights={**weights, Criterion.GENERATION: 0.0},
        language_hard=parsed.matching.language_required,
        seniority_min_gap=rule.min_level_gap if enforced else None,
        objective=Objective(objective or parsed.matching.objective.value),
    )


def to_participant(row: dict[str, Any], remaining_capacity: int, starts_on: date) -> Participant:
    """A pool row (``participant_id``, ``role``, ``country``, ``profile``,
    ``employee_ref``, ``manager_ref``, ``manager_chain`` from the HR
    directory) as the domain's participant.
    ``remaining_capacity``: a mentor's free seats (ignored for mentees)."""
    profile = ParticipantProfile.model_validate(row["profile"])
    role = Role(row["role"])
    themes = profile.themes_wanted if role is Role.MENTEE else profile.themes_offered
    return Participant(
        id=str(row["participant_id"]),
        role=role,
        country=row["country"],
        entity=profile.entity,
        function=profile.business_function,
        job_level=profile.job_level,
        tenure_years=float(profile.tenure_years),
        languages=frozenset(profile.languages),
        tz_offset_hours=utc_offset_hours(profile.time_zone, starts_on),
        learner_profile=profile.learner_profile.value,
        generation=profile.generation_band.value if profile.generation_band else None,
        intentions=frozenset(INTENTION_LABELS.get(i, i) for i in profile.intentions),
        themes=tuple((t.theme, t.level) for t in themes),
        sessions_per_month=float(profile.sessions_per_month),
        capacity=max(remaining_capacity, 0) if role is Role.MENTOR else 1,
        seats=(profile.capacity or 1) if role is Role.MENTOR else None,
        manager_ref=row.get("manager_ref"),
        employee_ref=row.get("employee_ref"),
        manager_chain=tuple(row.get("manager_chain") or ()),
    )
