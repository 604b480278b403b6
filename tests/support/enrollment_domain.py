"""Aggregates built in memory, for the domain's unit tests."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from libs.events.contexts.enrollment import (
    Actor,
    LearnerProfile,
    ParticipantProfile,
    ProgrammeMode,
    ProgrammeSettings,
    Role,
    ThemeLevel,
)
from services.enrollment.domain.participant import Enrolment, Participant
from services.enrollment.domain.programme import Programme
from services.enrollment.domain.values import default_settings
from services.enrollment.domain.wave import Wave, WavePlan

ACTOR = Actor(subject="hr-1", client_id="hr-portal")
ORG = "org-a"


def programme(mode: ProgrammeMode = ProgrammeMode.REVERSE, **settings: Any) -> Programme:
    base = default_settings(mode).model_dump()
    base["languages"] = ["en", "fr"]
    return Programme.create(
        programme_id=uuid.uuid4(),
        organisation=ORG,
        name="Reverse mentoring",
        mode=mode,
        settings=ProgrammeSettings.model_validate({**base, **settings}),
        actor=ACTOR,
    )


def wave(of: Programme, country: str = "FR") -> Wave:
    plan = WavePlan(
        "Wave 1", "Europe", country, f"committee-{country.lower()}", date(2026, 1, 5), date(2026, 6, 30), 30
    )
    return Wave.open(wave_id=uuid.uuid4(), programme=of, plan=plan, actor=ACTOR)


def profile(role: Role, **overrides: Any) -> ParticipantProfile:
    values: dict[str, Any] = {
        "entity": "Acme France",
        "business_function": "finance",
        "job_level": 10 if role is Role.MENTEE else 2,
        "tenure_years": 12 if role is Role.MENTEE else 1,
        "languages": ["fr"],
        "time_zone": "Europe/Paris",
        "learner_profile": LearnerProfile.EXPERIENTIAL,
        "intentions": ["find_digital_profiles"] if role is Role.MENTEE else ["understand_businesses"],
        "themes_wanted": [ThemeLevel(theme="data_ai", level=1)] if role is Role.MENTEE else [],
        "themes_offered": [ThemeLevel(theme="data_ai", level=4)] if role is Role.MENTOR else [],
        "sessions_per_month": 1,
        "capacity": 2 if role is Role.MENTOR else None,
    }
    return ParticipantProfile(**{**values, **overrides})


def enrolment(role: Role, employee_ref: str = "E-1", **profile_overrides: Any) -> Enrolment:
    return Enrolment(
        role=role,
        profile=profile(role, **profile_overrides),
        employee_ref=employee_ref,
        display_name="Ada",
        email="ada@example.com",
        motivation="Learn",
    )


def enrolled(of: Programme, in_wave: Wave, role: Role, **profile_overrides: Any) -> Participant:
    return Participant.enrol(
        participant_id=uuid.uuid4(),
        programme=of,
        wave=in_wave,
        enrolment=enrolment(role, **profile_overrides),
        actor=ACTOR,
    )
