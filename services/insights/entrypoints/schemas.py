"""Response models of the insights API: what each read really sends, so the
OpenAPI document (and a client generated from it) has a type for every
answer. The read models compute plain values; these models only describe
and check them on the way out."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from services.insights.health.rules import HealthRules, Status

#: A figure that may be withheld or undefined (null).
Share = float | None
#: One value per dimension of the network: entity, function, country, generation.
PerDimension = dict[str, Share]


# --------------------------------------------------------------------------- pair health


class ReasonOut(BaseModel):
    code: str
    fact: str = Field(description="The event type the reason comes from.")
    at: datetime = Field(description="When it became true.")
    detail: str
    values: dict[str, datetime | int | float | str | None] = Field(description="The facts and thresholds behind it.")


class MemberMoodOut(BaseModel):
    mood: int
    at: datetime


class ActivityOut(BaseModel):
    sessions_held: int
    sessions_cancelled: int
    no_shows: int
    last_held_at: datetime | None
    last_mood: int | None = Field(description="The pair's latest check-in mood, whoever gave it.")
    moods: dict[str, MemberMoodOut] = Field(
        description="Each member's latest check-in, by member (mentee, mentor): one member's later, "
        "happier check-in does not hide the other's low mood."
    )


class PairHealthOut(BaseModel):
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    wave_name: str | None
    country: str
    region: str | None
    formed_at: datetime | None
    ended_at: datetime | None
    status: Status
    reasons: list[ReasonOut]
    activity: ActivityOut


class HealthRulesOut(BaseModel):
    programme_id: UUID
    defaults: HealthRules
    overrides: dict[str, int | float | None] = Field(description="The thresholds the programme sets itself.")
    effective: HealthRules
    updated_at: datetime | None
    updated_by: str | None


# --------------------------------------------------------------------------- network


class NodeOut(BaseModel):
    id: str = Field(description="<dimension>:<group>, e.g. country:FR.")
    kind: str = Field(description="The dimension: entity, function, country or generation.")
    label: str
    pairs: int


class LinkOut(BaseModel):
    source: str = Field(description="The smaller of the two node ids (the graph is undirected).")
    target: str
    dimension: str
    pairs: int
    sessions: int
    crossing: bool = Field(description="False for a self-loop: both people in the same group.")


class SilosOut(BaseModel):
    unreached: list[str]
    closed: list[str]


class BridgeOut(BaseModel):
    dimension: str
    between: list[str]
    pairs: int


class MeasuresOut(BaseModel):
    pairs: int
    crossing_share: PerDimension
    silos: dict[str, SilosOut]
    bridges: list[BridgeOut]
    components: dict[str, int]


class WaveChangeOut(BaseModel):
    groups_reached: dict[str, int]
    crossing_share: PerDimension


class WaveStepOut(BaseModel):
    wave_id: str
    wave_name: str
    pairs: int
    cumulative_pairs: int
    groups_reached: dict[str, int]
    crossing_share: PerDimension
    bridges: int
    change: WaveChangeOut | None = Field(None, description="Since the wave before (absent for the first).")


class NetworkOut(BaseModel):
    nodes: list[NodeOut] = Field(description="Ordered by id.")
    links: list[LinkOut] = Field(description="Ordered by dimension, source, target.")
    measures: MeasuresOut
    waves: list[WaveStepOut]


# --------------------------------------------------------------------------- rollout


class RolloutRowOut(BaseModel):
    region: str | None = None
    country: str | None = None
    wave_id: UUID | None = None
    wave_name: str | None = None
    waves: int
    target_pairs: int
    enrolled: int
    withdrawn: int
    mentees: int
    mentors: int
    qualified_mentors: int
    matched: int
    pairs_formed: int
    pairs_active: int
    pairs_completed: int
    pairs_dissolved: int
    sessions_held: int
    surveys_due: int
    surveys_answered: int
    survey_response_rate: float | None
    maturity_pairs: int
    maturity_change_of_means_percent: float | None = Field(
        description="(mean post - mean pre) / mean pre * 100 over the pairs whose mentee answered both "
        "(evaluation's change_of_means_percent)."
    )
    maturity_mean_pair_change_percent: float | None = Field(
        description="The mean of the pairs' own changes, (post - pre) / pre * 100 per pair."
    )
    maturity_delta_percent: float | None = Field(
        description="Deprecated older name of maturity_mean_pair_change_percent (the same value).",
        json_schema_extra={"deprecated": True},
    )
    pairs_with_first_session: int
    median_days_to_first_session: float | None
    suppressed: list[str] = Field(description="Figures withheld (fewer pairs than the anonymity threshold).")


class RolloutOut(BaseModel):
    programme_id: UUID
    k_anonymity: int
    programme: list[RolloutRowOut]
    region: list[RolloutRowOut]
    country: list[RolloutRowOut]
    wave: list[RolloutRowOut]


# --------------------------------------------------------------------------- success factors


class GroupFigureOut(BaseModel):
    n: int
    value: float | None


class ComparisonOut(BaseModel):
    suppressed: bool
    reason: str | None = Field(None, description="Why it is suppressed.")
    measure: str | None = Field(None, description="risk_difference or mean_difference.")
    with_: GroupFigureOut | None = Field(None, alias="with")
    without: GroupFigureOut | None = None
    estimate: float | None = None
    ci95: list[float | None] | None = None
    hedges_g: float | None = None

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class FactorOut(BaseModel):
    factor: str
    outcomes: dict[str, ComparisonOut]


class SuccessFactorsOut(BaseModel):
    programme_id: UUID
    k_anonymity: int
    pairs: int
    factors: list[FactorOut]
