"""Matching domain: each criterion, each hard constraint, and explain() == vectorised scores."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest

from services.matching.domain import (
    Criterion,
    HardConstraint,
    LearnerProfile,
    MatchingPolicy,
    PairConstraints,
    Participant,
    Role,
    ScoreModel,
    explain,
    score_matrix,
)
from services.matching.domain import scoring
from tests.support.matching_synthetic import generate_pool


def mentee(**kw) -> Participant:
    base = dict(
        id="e1",
        role=Role.MENTEE,
        country="FR",
        entity="Retail FR",
        function="Finance",
        function_family="finance",
        job_level=7,
        tenure_years=20,
        generation="gen_x",
        languages={"fr", "en"},
        tz_offset_hours=1,
        learner_profile=LearnerProfile.EXPERIENTIAL,
        intentions={"support_junior_career"},
        themes={"generative_ai": 2},
        sessions_per_month=1,
        employee_ref="EXEC1",
        manager_ref="BOSS1",
    )
    base.update(kw)
    return Participant(**base)


def mentor(**kw) -> Participant:
    base = dict(
        id="m1",
        role=Role.MENTOR,
        country="FR",
        entity="Insurance FR",
        function="Data",
        function_family="technology",
        job_level=2,
        tenure_years=2,
        generation="gen_z",
        languages={"fr"},
        tz_offset_hours=1,
        learner_profile=LearnerProfile.EXPERIENTIAL,
        intentions={"progress_in_own_field"},
        themes={"generative_ai": 4},
        sessions_per_month=2,
        capacity=2,
        employee_ref="JR1",
        manager_ref="MGR9",
    )
    base.update(kw)
    return Participant(**base)


def raw(criterion: Criterion, e: Participant, m: Participant, policy: MatchingPolicy | None = None) -> float:
    return explain(e, m, policy or MatchingPolicy()).criterion(criterion).raw


def vec_score(e: Participant, m: Participant, policy: MatchingPolicy, constraints: PairConstraints | None = None) -> float:
    return float(score_matrix([e], [m], policy, constraints)[0, 0])


# --------------------------------------------------------------------------- criteria


def test_theme_fit_rewards_a_mentor_rated_above_the_mentee():
    e = mentee(themes={"generative_ai": 2, "cloud": 3, "agile": 1})
    above = raw(Criterion.THEMES, e, mentor(themes={"generative_ai": 4, "cloud": 5, "agile": 2}))
    equal = raw(Criterion.THEMES, e, mentor(themes={"generative_ai": 2, "cloud": 3, "agile": 1}))
    mixed = raw(Criterion.THEMES, e, mentor(themes={"generative_ai": 4, "cloud": 3, "low_code": 5}))
    below = raw(Criterion.THEMES, mentee(themes={"cloud": 4}), mentor(themes={"cloud": 2}))
    assert above == 1.0
    assert equal == pytest.approx(0.6)
    assert mixed == pytest.approx((1.0 + 0.6 + 0.0) / 3)  # agile not offered
    assert below == pytest.approx(0.3)
    assert above > equal > below > raw(Criterion.THEMES, e, mentor(themes={"blockchain": 5}))
    assert raw(Criterion.THEMES, mentee(themes={}), mentor()) == 0.0


def test_theme_credits_are_set_by_the_policy():
    policy = MatchingPolicy(theme_credit_above=0.9, theme_credit_equal=0.5, theme_credit_below=0.1)
    assert raw(Criterion.THEMES, mentee(themes={"cloud": 2}), mentor(themes={"cloud": 3}), policy) == 0.9
    assert raw(Criterion.THEMES, mentee(themes={"cloud": 2}), mentor(themes={"cloud": 1}), policy) == 0.1


def test_learner_profile_compatibility_table():
    lp = LearnerProfile
    e = mentee(learner_profile=lp.EXPERIENTIAL)
    assert raw(Criterion.LEARNER_PROFILE, e, mentor(learner_profile=lp.EXPERIENTIAL)) == 1.0
    assert raw(Criterion.LEARNER_PROFILE, e, mentor(learner_profile=lp.MIXED)) == 0.75
    assert raw(Criterion.LEARNER_PROFILE, e, mentor(learner_profile=lp.THEORETICAL)) == 0.25
    custom = MatchingPolicy(learner_compat={(lp.EXPERIENTIAL, lp.THEORETICAL): 0.9})
    assert raw(Criterion.LEARNER_PROFILE, e, mentor(learner_profile=lp.THEORETICAL), custom) == 0.9
    assert raw(Criterion.LEARNER_PROFILE, e, mentor(learner_profile=lp.MIXED), custom) == 0.0  # not in the table


def test_intention_overlap_is_data_driven():
    e = mentee(intentions={"support_junior_career", "find_digital_profiles"})
    m = mentor(intentions={"progress_in_own_field"})
    # best mentor intention for each mentee intention, averaged: (1.0 + 0.6) / 2
    assert raw(Criterion.INTENTIONS, e, m) == pytest.approx(0.8)
    assert raw(Criterion.INTENTIONS, e, mentor(intentions={"progress_in_own_field", "gain_visibility"})) == 1.0
    assert raw(Criterion.INTENTIONS, mentee(intentions=set()), m) == 0.0
    assert raw(Criterion.INTENTIONS, e, mentor(intentions=set())) == 0.0
    # an identical label counts; a custom table replaces the default
    same = mentee(intentions={"build_network"})
    assert raw(Criterion.INTENTIONS, same, mentor(intentions={"build_network"})) == 1.0
    policy = MatchingPolicy(intention_compat={("support_junior_career", "progress_in_own_field"): 0.2})
    assert raw(Criterion.INTENTIONS, mentee(), m, policy) == 0.2


def test_shared_function_or_family():
    e = mentee(function="Data", function_family="technology")
    assert raw(Criterion.FUNCTION, e, mentor(function="Data", function_family="technology")) == 1.0
    assert raw(Criterion.FUNCTION, e, mentor(function="IT", function_family="technology")) == 0.5
    assert raw(Criterion.FUNCTION, e, mentor(function="Sales", function_family="commercial")) == 0.0
    policy = MatchingPolicy(function_family_credit=0.25)
    assert raw(Criterion.FUNCTION, e, mentor(function="IT", function_family="technology"), policy) == 0.25
    # no family known: only the same function counts
    assert raw(Criterion.FUNCTION, mentee(function_family=""), mentor(function="IT", function_family="")) == 0.0


def test_language_soft_criterion_and_hard_requirement():
    e, m = mentee(languages={"de"}), mentor(languages={"fr"})
    soft = MatchingPolicy(language_hard=False)
    bd = explain(e, m, soft)
    assert bd.feasible and bd.criterion(Criterion.LANGUAGE).raw == 0.0
    assert explain(mentee(languages={"de", "fr"}), m, soft).criterion(Criterion.LANGUAGE).raw == 1.0
    hard = explain(e, m, MatchingPolicy())
    assert not hard.feasible and hard.violations == (HardConstraint.NO_SHARED_LANGUAGE,)
    assert hard.total == -math.inf
    assert vec_score(e, m, MatchingPolicy()) == -math.inf
    assert vec_score(e, m, soft) == pytest.approx(bd.total, abs=1e-9)


def test_time_zone_distance_on_the_24h_circle():
    assert raw(Criterion.TIME_ZONE, mentee(tz_offset_hours=1), mentor(tz_offset_hours=1)) == 1.0
    assert raw(Criterion.TIME_ZONE, mentee(tz_offset_hours=1), mentor(tz_offset_hours=5)) == 0.5
    assert raw(Criterion.TIME_ZONE, mentee(tz_offset_hours=-5), mentor(tz_offset_hours=9)) == 0.0
    # +12 and -11 are one hour apart
    assert raw(Criterion.TIME_ZONE, mentee(tz_offset_hours=12), mentor(tz_offset_hours=-11)) == pytest.approx(1 - 1 / 8)
    assert raw(Criterion.TIME_ZONE, mentee(tz_offset_hours=5.5), mentor(tz_offset_hours=1.5), MatchingPolicy(max_tz_distance_hours=16)) == 0.75


def test_cross_entity_bonus():
    assert raw(Criterion.CROSS_ENTITY, mentee(entity="Retail FR"), mentor(entity="Insurance FR")) == 1.0
    assert raw(Criterion.CROSS_ENTITY, mentee(entity="Retail FR"), mentor(entity="Retail FR")) == 0.0


def test_availability_fit_uses_the_mentors_time_per_mentee():
    # 2 sessions a month shared by capacity 2 = 1 per mentee
    assert raw(Criterion.AVAILABILITY, mentee(sessions_per_month=1), mentor(sessions_per_month=2, capacity=2)) == 1.0
    assert raw(Criterion.AVAILABILITY, mentee(sessions_per_month=2), mentor(sessions_per_month=2, capacity=2)) == 0.5
    assert raw(Criterion.AVAILABILITY, mentee(sessions_per_month=0), mentor(sessions_per_month=0, capacity=1)) == 1.0


def test_generation_criterion_rewards_a_younger_mentor():
    assert raw(Criterion.GENERATION, mentee(generation="gen_x"), mentor(generation="gen_z")) == 1.0
    assert raw(Criterion.GENERATION, mentee(generation="gen_x"), mentor(generation="gen_y")) == 0.5
    assert raw(Criterion.GENERATION, mentee(generation="gen_z"), mentor(generation="gen_x")) == 0.0
    assert raw(Criterion.GENERATION, mentee(generation="martian"), mentor(generation="gen_z")) == 0.0
    assert raw(Criterion.GENERATION, mentee(generation=None), mentor(generation="gen_z")) == 0.0


def test_score_is_the_weighted_sum_of_criteria_in_0_100():
    e, m = mentee(), mentor()
    bd = explain(e, m, MatchingPolicy())
    assert 0.0 <= bd.total <= 100.0
    assert bd.total == pytest.approx(sum(c.contribution for c in bd.criteria))
    for c in bd.criteria:
        assert c.contribution == pytest.approx(100.0 * c.weight / 100.0 * c.raw)  # default weights sum to 100
    only_themes = MatchingPolicy(weights={Criterion.THEMES: 3.0})
    bd = explain(mentee(themes={"cloud": 2}), mentor(themes={"cloud": 2}), only_themes)
    assert bd.total == pytest.approx(60.0)
    perfect = explain(
        mentee(intentions={"support_junior_career"}, function="Data", function_family="technology"),
        mentor(function="Data", function_family="technology", entity="Other", themes={"generative_ai": 5}),
        MatchingPolicy(),
    )
    assert perfect.total == pytest.approx(100.0)
    d = perfect.as_dict()
    assert d["feasible"] and len(d["criteria"]) == len(Criterion)


# --------------------------------------------------------------------------- hard constraints


@pytest.mark.parametrize(
    ("e", "m", "policy", "constraints", "expected"),
    [
        (mentee(id="x"), mentor(id="x"), MatchingPolicy(), None, HardConstraint.SAME_PERSON),
        (mentee(employee_ref="P1"), mentor(employee_ref="P1"), MatchingPolicy(), None, HardConstraint.SAME_PERSON),
        # the mentor reports to the mentee, directly or further up the chain
        (mentee(), mentor(manager_ref="EXEC1"), MatchingPolicy(), None, HardConstraint.SAME_REPORTING_LINE),
        (mentee(), mentor(manager_chain=("MGR9", "DIR3", "EXEC1")), MatchingPolicy(), None, HardConstraint.SAME_REPORTING_LINE),
        # the mentee reports to the mentor (mutual programmes)
        (mentee(manager_ref="JR1"), mentor(), MatchingPolicy(), None, HardConstraint.SAME_REPORTING_LINE),
        (
            mentee(manager_ref="BOSS1"),
            mentor(manager_ref="BOSS1"),
            MatchingPolicy(exclude_same_manager=True),
            None,
            HardConstraint.SAME_REPORTING_LINE,
        ),
        (mentee(), mentor(), MatchingPolicy(), PairConstraints(earlier_partners={("e1", "m1")}), HardConstraint.EARLIER_PARTNER),
        (mentee(), mentor(), MatchingPolicy(), PairConstraints(earlier_partners={("m1", "e1")}), HardConstraint.EARLIER_PARTNER),
        (mentee(), mentor(), MatchingPolicy(), PairConstraints(excluded={("e1", "m1")}), HardConstraint.HR_EXCLUDED),
        (mentee(), mentor(), MatchingPolicy(), PairConstraints(declined={("e1", "m1")}), HardConstraint.DECLINED),
        (mentee(job_level=3), mentor(job_level=4), MatchingPolicy(), None, HardConstraint.SENIORITY),
        (
            mentee(job_level=3),
            mentor(job_level=3),
            MatchingPolicy(seniority_min_gap=1),
            None,
            HardConstraint.SENIORITY,
        ),
        (mentee(), mentor(capacity=0), MatchingPolicy(), None, HardConstraint.NO_CAPACITY),
        (mentee(tz_offset_hours=-5), mentor(tz_offset_hours=9), MatchingPolicy(tz_hard=True), None, HardConstraint.TIME_ZONE_TOO_FAR),
        (mentee(languages={"de"}), mentor(languages={"fr"}), MatchingPolicy(), None, HardConstraint.NO_SHARED_LANGUAGE),
    ],
)
def test_each_hard_constraint_makes_the_pair_infeasible(e, m, policy, constraints, expected):
    bd = explain(e, m, policy, constraints)
    assert expected in bd.violations
    assert not bd.feasible and bd.total == -math.inf and len(bd.reasons) == len(bd.violations)
    assert vec_score(e, m, policy, constraints) == -math.inf
    # and the same pair without the constraint is feasible
    ok = explain(mentee(), mentor(), MatchingPolicy())
    assert ok.feasible and vec_score(mentee(), mentor(), MatchingPolicy()) == pytest.approx(ok.total, abs=1e-9)


def test_rules_that_allow_the_pair():
    assert explain(mentee(job_level=3), mentor(job_level=3), MatchingPolicy()).feasible  # not *more* senior
    assert explain(mentee(job_level=3), mentor(job_level=9), MatchingPolicy(seniority_min_gap=None)).feasible
    assert explain(mentee(job_level=3), mentor(job_level=4), MatchingPolicy(seniority_min_gap=-1)).feasible
    assert not explain(mentee(job_level=3), mentor(job_level=5), MatchingPolicy(seniority_min_gap=-1)).feasible
    assert not explain(mentee(job_level=5), mentor(job_level=4), MatchingPolicy(seniority_min_gap=2)).feasible
    assert explain(mentee(tz_offset_hours=-5), mentor(tz_offset_hours=9), MatchingPolicy()).feasible  # tz soft by default
    assert explain(mentee(manager_ref="B"), mentor(manager_ref="B"), MatchingPolicy()).feasible
    assert explain(mentee(), mentor(capacity=0), MatchingPolicy(), check_capacity=False).feasible


def test_violation_counts_explain_a_mentee_without_options():
    e = mentee(languages={"ja"}, job_level=2)
    mentors = [mentor(id=f"m{i}", languages={"fr"}, job_level=1 + i % 4, employee_ref=f"J{i}") for i in range(8)]
    model = ScoreModel([e], mentors, MatchingPolicy(), PairConstraints(excluded={("e1", "m0")}))
    counts = model.violation_counts(0)
    assert counts[HardConstraint.NO_SHARED_LANGUAGE] == 8
    assert counts[HardConstraint.SENIORITY] == 4  # levels 3 and 4
    assert counts[HardConstraint.HR_EXCLUDED] == 1


# --------------------------------------------------------------------------- explain == vectorised


POLICIES = [
    MatchingPolicy(),
    MatchingPolicy(language_hard=False, tz_hard=True, max_tz_distance_hours=5, exclude_same_manager=True),
    MatchingPolicy(
        seniority_min_gap=1,
        weights={Criterion.THEMES: 1, Criterion.AVAILABILITY: 7, Criterion.GENERATION: 2, Criterion.CROSS_ENTITY: 0.5},
    ),
    MatchingPolicy(seniority_min_gap=None, language_hard=False, weights={Criterion.LANGUAGE: 1, Criterion.INTENTIONS: 2}),
]


@pytest.mark.parametrize("policy_index", range(len(POLICIES)))
@pytest.mark.parametrize("elementwise", [False, True], ids=["tables", "elementwise"])
def test_vectorised_scores_equal_explained_totals(policy_index, elementwise, monkeypatch):
    if elementwise:  # force the fallback path for numeric criteria (time zone, availability)
        monkeypatch.setattr(scoring, "_TABLE_MAX_CELLS", 0)
    policy = POLICIES[policy_index]
    pool = generate_pool(120, 200, seed=policy_index)
    rng = random.Random(policy_index)
    # make some pairs interesting: pins of reporting lines, capacity 0, earlier partners both ways
    mentors = list(pool.mentors)
    mentors[3] = replace(mentors[3], capacity=0)
    mentors[4] = replace(mentors[4], manager_ref=pool.mentees[0].employee_ref)
    cons = PairConstraints(
        earlier_partners=pool.constraints.earlier_partners | {(mentors[5].id, pool.mentees[1].id)},
        excluded=pool.constraints.excluded | {(pool.mentees[2].id, mentors[6].id)},
        declined={(pool.mentees[3].id, mentors[7].id)},
    )
    model = ScoreModel(pool.mentees, mentors, policy, cons)
    W = model.matrix()
    pairs = [(rng.randrange(len(pool.mentees)), rng.randrange(len(mentors))) for _ in range(1500)]
    pairs += [(0, 4), (1, 5), (2, 6), (3, 7)] + [(i, 3) for i in range(5)]
    for i, j in pairs:
        bd = explain(pool.mentees[i], mentors[j], policy, cons)
        if bd.feasible:
            assert W[i, j] == pytest.approx(bd.total, abs=1e-9), (i, j)
        else:
            assert W[i, j] == -math.inf, (i, j, bd.violations)
    assert np.isneginf(W[0, 4]) and np.isneginf(W[1, 5]) and np.isneginf(W[2, 6]) and np.isneginf(W[3, 7])
    # pair_scores() and blocks of arbitrary rows agree with the full matrix
    rows = np.array([i for i, _ in pairs])
    cols = np.array([j for _, j in pairs])
    got = model.pair_scores(rows, cols)
    np.testing.assert_allclose(got, W[rows, cols], atol=1e-9)
    picked = np.array([7, 3, 50, 3])
    np.testing.assert_array_equal(model.block(picked), W[picked])
    finite = W[np.isfinite(W)]
    assert finite.min() >= -1e-9 and finite.max() <= 100.0 + 1e-9  # [0, 100] to rounding


def test_candidate_graph_keeps_each_rows_best_and_bounds_the_rest():
    pool = generate_pool(80, 150, seed=11)
    model = ScoreModel(pool.mentees, pool.mentors, MatchingPolicy(), pool.constraints)
    W = model.matrix()
    k = 7
    g = model.candidates(k, block_rows=13)
    for i in range(W.shape[0]):
        row = W[i]
        feasible = np.sort(row[np.isfinite(row)])[::-1]
        kept = g.scores[g.row_slice(i)]
        assert list(kept) == sorted(kept, reverse=True)
        assert np.array_equal(kept, feasible[:k])
        assert np.array_equal(W[i, g.cols[g.row_slice(i)]], kept)
        assert g.next_best[i] == (feasible[k] if feasible.size > k else -math.inf)
        assert g.row_best[i] == (feasible[0] if feasible.size else -math.inf)


def test_participant_and_policy_validation():
    with pytest.raises(ValueError):
        mentee(themes={"cloud": 6})
    with pytest.raises(ValueError):
        mentor(capacity=-1)
    with pytest.raises(ValueError):
        mentee(tz_offset_hours=15)
    with pytest.raises(ValueError):
        MatchingPolicy(weights={c: 0 for c in Criterion})
    with pytest.raises(ValueError):
        MatchingPolicy(weights={Criterion.THEMES: -1})
    with pytest.raises(ValueError):
        MatchingPolicy(theme_credit_above=2)
    p = mentee(themes=[("b", 2), ("a", 1)])
    assert p.themes == (("a", 1), ("b", 2)) and p.theme_levels == {"a": 1, "b": 2}
    assert mentor(manager_chain=["X"], manager_ref="Y").line_managers == {"X", "Y"}
    policy = MatchingPolicy(weights={Criterion.THEMES: 1})
    assert policy.weights[Criterion.LANGUAGE] == 0 and policy.share(Criterion.THEMES) == 1.0
    # policies are values: equal and hashable (the service can cache per policy)
    assert MatchingPolicy() == MatchingPolicy() and hash(MatchingPolicy()) == hash(MatchingPolicy())
    assert len({MatchingPolicy(), replace(MatchingPolicy(), language_hard=False), policy}) == 3
