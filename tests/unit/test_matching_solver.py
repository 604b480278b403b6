"""Matching domain: the solver's optimum against brute force, pins, reasons, determinism, suggestions."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from services.matching.domain import (
    CandidateGraph,
    Criterion,
    HardConstraint,
    InvalidPin,
    LearnerProfile,
    MatchingPolicy,
    Objective,
    PairConstraints,
    Participant,
    Role,
    ScoreModel,
    UnmatchedReason,
    assign_dense,
    assign_graph,
    assign_sparse,
    price_bound,
    solve,
    suggest_top_k,
)
from services.matching.domain import solver as solver_module
from tests.support.matching_greedy import greedy_match
from tests.support.matching_synthetic import generate_pool, generate_tight_pool

THEMES = ("ai", "cloud", "data", "agile")
OBJECTIVES = list(Objective)


def random_instance(seed: int, max_mentees: int = 5, max_mentors: int = 4):
    """Small, tie-rich instances where every hard constraint shows up now and then."""
    rng = random.Random(seed)
    n_e, n_m = rng.randint(1, max_mentees), rng.randint(1, max_mentors)

    def person(role: Role, i: int) -> Participant:
        is_mentor = role is Role.MENTOR
        return Participant(
            id=f"{role.value}-{i}",
            role=role,
            country=rng.choice("AB"),
            entity=rng.choice(("e1", "e2", "e3")),
            function=rng.choice(("Data", "IT", "Sales")),
            function_family="tech" if rng.random() < 0.6 else "biz",
            job_level=rng.randint(1, 4) if is_mentor else rng.randint(2, 6),
            tenure_years=1,
            generation=rng.choice(("gen_x", "gen_y", "gen_z")),
            languages=frozenset(rng.sample(("en", "fr", "de"), k=rng.choice((1, 1, 2)))),
            tz_offset_hours=rng.choice((0, 1, 5.5, -5)),
            learner_profile=rng.choice(tuple(LearnerProfile)),
            intentions=frozenset(
                rng.sample(
                    ("understand_company_businesses", "progress_in_own_field", "build_network")
                    if is_mentor
                    else ("support_junior_career", "find_digital_profiles"),
                    k=1,
                )
            ),
            themes={t: rng.randint(2, 5) if is_mentor else rng.randint(1, 3) for t in rng.sample(THEMES, k=rng.randint(1, 3))},
            sessions_per_month=rng.choice((1, 2)),
            capacity=rng.choice((0, 1, 1, 2, 3)) if is_mentor else 1,
            employee_ref=f"{role.value}{i}",
            manager_ref=None,
        )

    mentees = [person(Role.MENTEE, i) for i in range(n_e)]
    mentors = [person(Role.MENTOR, j) for j in range(n_m)]
    if rng.random() < 0.3:  # a mentor reports to a mentee
        j = rng.randrange(n_m)
        mentors[j] = replace(mentors[j], manager_ref=rng.choice(mentees).employee_ref)
    pairs = [(e.id, m.id) for e in mentees for m in mentors]
    constraints = PairConstraints(
        earlier_partners=frozenset(p for p in pairs if rng.random() < 0.08),
        excluded=frozenset(p for p in pairs if rng.random() < 0.05),
    )
    return mentees, mentors, constraints


def brute_force(W: np.ndarray, capacity: np.ndarray, objective: Objective) -> tuple[int, float]:
    """(matched, total score) of the best assignment, by enumeration."""
    n, m = W.shape
    options = [[-1] + [j for j in range(m) if np.isfinite(W[i, j]) and capacity[j] > 0] for i in range(n)]
    best: tuple[int, float] | None = None
    for combo in itertools.product(*options):
        used = Counter(j for j in combo if j >= 0)
        if any(used[j] > capacity[j] for j in used):
            continue
        matched = sum(j >= 0 for j in combo)
        score = float(sum(W[i, j] for i, j in enumerate(combo) if j >= 0))
        if best is None:
            best = (matched, score)
        elif objective is Objective.MAX_TOTAL_SCORE:
            if score > best[1] + 1e-9:
                best = (matched, score)
        elif (matched, score) > (best[0], best[1] + 1e-9):
            best = (matched, score)
    assert best is not None
    return best


def check_result(result, mentees, mentors, policy, constraints):
    """Pairs are feasible, capacities hold, every mentee is matched or explained."""
    ids = sorted(p.id for p in mentees)
    mentor_ids = sorted(p.id for p in mentors)
    model = ScoreModel(sorted(mentees, key=lambda p: p.id), sorted(mentors, key=lambda p: p.id), policy, constraints, check_capacity=False)
    W = model.matrix()
    cap = {m.id: m.capacity for m in mentors}
    used = Counter(p.mentor_id for p in result.pairs)
    assert all(used[k] <= cap[k] for k in used)
    assert sorted([p.mentee_id for p in result.pairs] + [u.mentee_id for u in result.unmatched]) == ids
    for p in result.pairs:
        s = W[ids.index(p.mentee_id), mentor_ids.index(p.mentor_id)]
        assert np.isfinite(s), "an infeasible pair was chosen"
        assert p.score == pytest.approx(s, abs=1e-9)
    for u in result.unmatched:
        row = W[ids.index(u.mentee_id)]
        compatible = [mentor_ids[j] for j in np.flatnonzero(np.isfinite(row))]
        if u.reason is UnmatchedReason.NO_FEASIBLE_MENTOR:
            assert not compatible
        else:
            assert u.reason is UnmatchedReason.CAPACITY_EXHAUSTED and compatible
            assert u.detail["compatible_mentors"] == len(compatible)
            assert all(used[j] >= cap[j] for j in compatible), "a compatible mentor still had room"
    assert result.total_score == pytest.approx(sum(p.score for p in result.pairs), abs=1e-6)
    return W


# --------------------------------------------------------------------------- optimum == brute force


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("kernel", ["default", "sparse"])
def test_optimum_equals_brute_force_on_small_random_instances(objective, kernel, monkeypatch):
    if kernel == "sparse":  # small candidate graphs go to the dense kernel by default: force LAPJVsp
        monkeypatch.setattr(solver_module, "SMALL_GRAPH_CELLS", 0)
    policy = MatchingPolicy(objective=objective)
    checked_pricing = 0
    for seed in range(200):
        mentees, mentors, cons = random_instance(seed)
        model = ScoreModel(sorted(mentees, key=lambda p: p.id), sorted(mentors, key=lambda p: p.id), policy, cons, check_capacity=False)
        W = model.matrix()
        capacity = np.array([m.capacity for m in sorted(mentors, key=lambda p: p.id)])
        best_matched, best_score = brute_force(W, capacity, objective)
        for method, k in (("dense", None), ("candidates", 1), ("candidates", 2), ("auto", None)):
            result = solve(mentees, mentors, policy, cons, method=method, candidate_k=k)
            check_result(result, mentees, mentors, policy, cons)
            assert result.total_score == pytest.approx(best_score, abs=1e-6), (seed, method, k)
            if objective is Objective.MAX_MATCHED_THEN_SCORE:
                assert result.matched == best_matched, (seed, method, k)
            assert result.proven_optimal, (seed, method, k)
            assert result.upper_bound >= result.total_score - 1e-6
            assert result.matched_upper_bound >= best_matched
            checked_pricing += result.stats.get("pricing_rounds", 0)
    assert checked_pricing > 0  # the candidate path had to price excluded pairs in some instances


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_assignment_kernels_and_dual_bound_on_random_matrices(objective):
    rng = np.random.default_rng(7)
    for _ in range(150):
        n, m = rng.integers(1, 6), rng.integers(1, 5)
        W = np.round(rng.random((n, m)) * 20) / 2  # ties
        W[rng.random((n, m)) < 0.3] = -np.inf
        capacity = rng.integers(0, 3, size=m)
        best_matched, best_score = brute_force(W, capacity, objective)
        dense = assign_dense(W, capacity, objective)
        graph = graph_from_matrix(W)
        sparse = assign_sparse(graph, capacity, objective)
        for a in (dense, sparse, assign_graph(graph, capacity, objective)):
            chosen = a >= 0
            assert np.all(np.isfinite(W[np.flatnonzero(chosen), a[chosen]]))
            assert np.all(np.bincount(a[chosen], minlength=m) <= capacity)
            assert W[np.flatnonzero(chosen), a[chosen]].sum() == pytest.approx(best_score)
            if objective is Objective.MAX_MATCHED_THEN_SCORE:
                assert chosen.sum() == best_matched
        u, v, ub = price_bound(graph, capacity, sparse, objective)
        bonus = _bonus(objective, n)
        assert ub == pytest.approx(best_score + bonus * best_matched, abs=1e-6)  # tight at the optimum
        assert np.all(v >= 0) and np.all(u >= 0)
        # dual feasibility on every edge
        for i in range(n):
            for j in range(m):
                if np.isfinite(W[i, j]) and capacity[j] > 0:
                    assert u[i] + v[j] >= W[i, j] + bonus - 1e-6
        # any assignment gives a bound >= the optimum (v >= 0 is always dual feasible)
        _, _, ub_any = price_bound(graph, capacity, np.full(n, -1), objective)
        assert ub_any >= best_score + bonus * best_matched - 1e-6


def _bonus(objective: Objective, n: int) -> float:
    return solver_module.matched_bonus(objective, n)


def graph_from_matrix(W: np.ndarray) -> CandidateGraph:
    n, m = W.shape
    rows, cols = np.nonzero(np.isfinite(W))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return CandidateGraph(
        n_rows=n,
        n_cols=m,
        indptr=indptr,
        cols=cols.astype(np.int32),
        scores=W[rows, cols],
        next_best=np.full(n, -np.inf),
        row_best=np.where(np.isfinite(W).any(axis=1), W.max(axis=1), -np.inf),
    )


def test_objectives_differ_when_matching_more_costs_score():
    W = np.array([[95.0, 10.0], [80.0, -np.inf]])
    capacity = np.array([1, 1])
    assert list(assign_dense(W, capacity, Objective.MAX_TOTAL_SCORE)) == [0, -1]  # 95 > 10 + 80
    assert list(assign_dense(W, capacity, Objective.MAX_MATCHED_THEN_SCORE)) == [1, 0]  # two pairs beat one
    g = graph_from_matrix(W)
    assert list(assign_sparse(g, capacity, Objective.MAX_TOTAL_SCORE)) == [0, -1]
    assert list(assign_sparse(g, capacity, Objective.MAX_MATCHED_THEN_SCORE)) == [1, 0]


@pytest.mark.parametrize("kernel", ["default", "sparse"])
def test_candidate_graph_optimum_matches_dense_on_tight_pools(kernel, monkeypatch):
    if kernel == "sparse":
        monkeypatch.setattr(solver_module, "SMALL_GRAPH_CELLS", 0)
    pool = generate_tight_pool(150, slack=0.01, seed=5)
    for objective in OBJECTIVES:
        policy = MatchingPolicy(objective=objective)
        dense = solve(pool.mentees, pool.mentors, policy, pool.constraints, method="dense")
        cand = solve(pool.mentees, pool.mentors, policy, pool.constraints, method="candidates", candidate_k=3)
        assert cand.proven_optimal and cand.stats["pricing_rounds"] >= 1
        assert cand.total_score == pytest.approx(dense.total_score, abs=1e-6)
        assert cand.matched == dense.matched
        # without pricing the candidate optimum may be worse, but the bound still holds
        raw = solve(pool.mentees, pool.mentors, policy, pool.constraints, method="candidates", candidate_k=3, max_pricing_rounds=0)
        assert raw.total_score <= dense.total_score + 1e-6
        assert raw.upper_bound >= dense.total_score - 1e-6
        assert raw.matched_upper_bound >= dense.matched
        check_result(cand, pool.mentees, pool.mentors, policy, pool.constraints)


# --------------------------------------------------------------------------- pins, reasons


def test_pins_are_kept_and_reduce_capacity():
    pool = generate_pool(40, 25, seed=3)
    policy = MatchingPolicy()
    model = ScoreModel(pool.mentees, pool.mentors, policy, pool.constraints)
    W = model.matrix()
    # pin three feasible pairs, two on the same mentor
    j = next(j for j in range(W.shape[1]) if pool.mentors[j].capacity >= 2 and np.isfinite(W[:, j]).sum() >= 3)
    rows = [i for i in np.flatnonzero(np.isfinite(W[:, j]))[:2]]
    other = next((i, jj) for i in range(W.shape[0]) for jj in range(W.shape[1]) if i not in rows and jj != j and np.isfinite(W[i, jj]))
    pins = [(pool.mentees[r].id, pool.mentors[j].id) for r in rows] + [(pool.mentees[other[0]].id, pool.mentors[other[1]].id)]
    cons = replace(pool.constraints, pinned=tuple(pins))
    result = solve(pool.mentees, pool.mentors, policy, cons)
    got = {(p.mentee_id, p.mentor_id): p for p in result.pairs}
    for pin in pins:
        assert pin in got and got[pin].pinned
    assert sum(p.pinned for p in result.pairs) == 3
    check_result(result, pool.mentees, pool.mentors, policy, cons)
    # the rest is optimal given the pins: same as solving without the pinned mentees and with reduced capacity
    pinned_mentees = {a for a, _ in pins}
    left = Counter(b for _, b in pins)
    rest = solve(
        [e for e in pool.mentees if e.id not in pinned_mentees],
        [replace(m, capacity=m.capacity - left[m.id]) for m in pool.mentors],
        policy,
        pool.constraints,
    )
    pinned_total = sum(got[p].score for p in pins)
    assert result.total_score == pytest.approx(rest.total_score + pinned_total, abs=1e-6)


def test_invalid_pins_are_refused():
    mentees, mentors, _ = random_instance(1)
    e = mentees[0]
    m = replace(mentors[0], languages=e.languages, job_level=1, capacity=1, manager_ref=None)
    extra = replace(e, id="mentee-x", employee_ref="x")
    policy = MatchingPolicy()
    with pytest.raises(InvalidPin, match="paired together before"):
        solve([e], [m], policy, PairConstraints(pinned=((e.id, m.id),), earlier_partners={(e.id, m.id)}))
    with pytest.raises(InvalidPin, match="capacity"):
        solve([e, extra], [m], policy, PairConstraints(pinned=((e.id, m.id), (extra.id, m.id))))
    with pytest.raises(InvalidPin, match="unknown"):
        solve([e], [m], policy, PairConstraints(pinned=((e.id, "nobody"),)))
    m2 = replace(m, id="mentor-y", employee_ref="y")
    with pytest.raises(InvalidPin, match="more than one"):
        solve([e], [m, m2], policy, PairConstraints(pinned=((e.id, m.id), (e.id, m2.id))))
    with pytest.raises(InvalidPin, match="language"):
        solve([e], [replace(m, languages={"xx"})], policy, PairConstraints(pinned=((e.id, m.id),)))


def test_unmatched_reasons():
    pool = generate_pool(6, 4, seed=2)
    e = list(pool.mentees)
    mentors = [replace(m, languages={"fr"}, job_level=1, capacity=1, manager_ref=None, manager_chain=()) for m in pool.mentors[:1]]
    e[0] = replace(e[0], languages={"ja"})  # nobody speaks Japanese
    for i in range(1, 6):
        e[i] = replace(e[i], languages={"fr"}, job_level=5)
    result = solve(e, mentors, MatchingPolicy(), PairConstraints())
    reasons = {u.mentee_id: u for u in result.unmatched}
    assert reasons[e[0].id].reason is UnmatchedReason.NO_FEASIBLE_MENTOR
    assert reasons[e[0].id].detail == {HardConstraint.NO_SHARED_LANGUAGE.value: 1}
    assert result.matched == 1
    exhausted = [u for u in result.unmatched if u.reason is UnmatchedReason.CAPACITY_EXHAUSTED]
    assert len(exhausted) == 4 and all(u.detail == {"compatible_mentors": 1} for u in exhausted)
    # a pin can exhaust the capacity too
    for method in ("dense", "candidates"):
        pinned = solve(e, mentors, MatchingPolicy(), PairConstraints(pinned=((e[3].id, mentors[0].id),)), method=method, candidate_k=1)
        assert [p.mentee_id for p in pinned.pairs] == [e[3].id]
        assert {u.mentee_id for u in pinned.unmatched if u.reason is UnmatchedReason.CAPACITY_EXHAUSTED} == {e[i].id for i in (1, 2, 4, 5)}
        assert pinned.proven_optimal


def test_mentors_without_capacity_are_never_candidates():
    pool = generate_pool(60, 40, seed=17)
    # the best mentors of everybody have no capacity left
    model = ScoreModel(pool.mentees, pool.mentors, MatchingPolicy(), pool.constraints)
    W = model.matrix()
    best = set(np.argmax(np.where(np.isfinite(W), W, -1), axis=1).tolist())
    mentors = [replace(m, capacity=0) if j in best else m for j, m in enumerate(pool.mentors)]
    dense = solve(pool.mentees, mentors, MatchingPolicy(), pool.constraints, method="dense")
    cand = solve(pool.mentees, mentors, MatchingPolicy(), pool.constraints, method="candidates", candidate_k=2)
    assert cand.proven_optimal and cand.total_score == pytest.approx(dense.total_score)
    full = {pool.mentors[j].id for j in best}
    assert not any(p.mentor_id in full for p in cand.pairs + dense.pairs)
    assert cand.stats["candidate_edges"] <= 2 * 60 + cand.stats["rescored_rows"] * 40


def test_zero_score_pairs_are_still_formed():
    policy = MatchingPolicy(weights={Criterion.THEMES: 1.0})
    mentees, mentors, _ = random_instance(4)
    e = replace(mentees[0], themes={"ai": 1}, languages={"en"}, job_level=6)
    m = replace(mentors[0], themes={"cloud": 5}, languages={"en"}, job_level=1, capacity=1, manager_ref=None)
    for method in ("dense", "candidates"):
        result = solve([e], [m], policy, method=method)
        assert result.matched == 1 and result.pairs[0].score == 0.0 and not result.unmatched


def test_infeasible_pairs_are_never_chosen_even_when_they_would_score_best():
    pool = generate_pool(30, 20, seed=9)
    model = ScoreModel(pool.mentees, pool.mentors, MatchingPolicy(language_hard=False, seniority_min_gap=None), pool.constraints)
    W_soft = model.matrix()
    for objective in OBJECTIVES:
        policy = MatchingPolicy(objective=objective)
        result = solve(pool.mentees, pool.mentors, policy, pool.constraints)
        W = check_result(result, pool.mentees, pool.mentors, policy, pool.constraints)
        assert np.isfinite(W_soft).sum() > np.isfinite(W).sum()  # the hard rules do exclude pairs here


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize(("method", "k"), [("dense", None), ("candidates", 4)])
def test_same_pairs_whatever_the_input_order(objective, method, k):
    pool = generate_tight_pool(80, slack=0.05, seed=13)
    policy = MatchingPolicy(objective=objective)
    base = solve(pool.mentees, pool.mentors, policy, pool.constraints, method=method, candidate_k=k)
    rng = random.Random(1)
    for _ in range(4):
        e, m = list(pool.mentees), list(pool.mentors)
        rng.shuffle(e)
        rng.shuffle(m)
        again = solve(e, m, policy, pool.constraints, method=method, candidate_k=k)
        assert again.pairs == base.pairs
        assert again.unmatched == base.unmatched
        assert again.total_score == base.total_score


def test_duplicate_ids_and_wrong_roles_are_refused():
    mentees, mentors, _ = random_instance(2)
    with pytest.raises(ValueError, match="duplicate"):
        solve([mentees[0], mentees[0]], mentors)
    with pytest.raises(ValueError, match="role"):
        solve(mentors, mentors)
    with pytest.raises(ValueError, match="method"):
        solve(mentees, mentors, method="magic")


def test_empty_sides():
    mentees, mentors, _ = random_instance(3)
    assert solve([], mentors).pairs == ()
    r = solve(mentees, [])
    assert r.matched == 0 and all(u.reason is UnmatchedReason.NO_FEASIBLE_MENTOR for u in r.unmatched)


# --------------------------------------------------------------------------- greedy, suggestions


def test_greedy_is_feasible_and_never_better_than_the_optimum():
    for seed in range(3):
        pool = generate_tight_pool(120, slack=0.02, seed=seed)
        policy = MatchingPolicy()
        opt = solve(pool.mentees, pool.mentors, policy, pool.constraints)
        greedy = greedy_match(pool.mentees, pool.mentors, policy, pool.constraints)
        check_result(greedy, pool.mentees, pool.mentors, policy, pool.constraints)
        assert greedy.total_score <= opt.total_score + 1e-6
        assert not greedy.proven_optimal
        cand_greedy = greedy_match(pool.mentees, pool.mentors, policy, pool.constraints, candidate_k=5)
        check_result(cand_greedy, pool.mentees, pool.mentors, policy, pool.constraints)


def test_suggest_top_k_offers_the_best_feasible_mentors_with_room():
    pool = generate_pool(5, 60, seed=21)
    policy = MatchingPolicy(top_k=4)
    e = pool.mentees[0]
    model = ScoreModel([e], pool.mentors, policy, pool.constraints)
    row = model.matrix()[0]
    order = sorted((j for j in range(len(row)) if np.isfinite(row[j])), key=lambda j: (-row[j], pool.mentors[j].id))
    got = suggest_top_k(e, pool.mentors, policy, pool.constraints)
    assert [s.mentor_id for s in got] == [pool.mentors[j].id for j in order[:4]]
    for s in got:
        assert s.breakdown.feasible and s.score == pytest.approx(s.breakdown.total)
        assert s.breakdown.mentor_id == s.mentor_id
    # a mentor whose seats are taken (pairs formed, proposals open) is not offered
    best = got[0]
    taken = {best.mentor_id: best.remaining_capacity}
    again = suggest_top_k(e, pool.mentors, policy, pool.constraints, taken=taken)
    assert best.mentor_id not in [s.mentor_id for s in again]
    assert [s.mentor_id for s in again] == [pool.mentors[j].id for j in order[1:5]]
    # a decline rules the pair out; k can be set per call
    declined = replace(pool.constraints, declined=frozenset({(e.id, best.mentor_id)}))
    assert best.mentor_id not in [s.mentor_id for s in suggest_top_k(e, pool.mentors, policy, declined, k=10)]
    assert len(suggest_top_k(e, pool.mentors, policy, pool.constraints, k=2)) == 2
    assert suggest_top_k(e, [], policy) == ()


def test_suggestion_ties_are_broken_by_mentor_id():
    mentees, mentors, _ = random_instance(5)
    e = replace(mentees[0], languages={"en"}, job_level=6)
    twin = replace(mentors[0], languages={"en"}, job_level=1, capacity=2, manager_ref=None)
    clones = [replace(twin, id=f"mentor-{c}", employee_ref=f"r{c}") for c in "dbca"]
    got = suggest_top_k(e, clones, MatchingPolicy(), k=3)
    assert [s.mentor_id for s in got] == ["mentor-a", "mentor-b", "mentor-c"]
    assert len({s.score for s in got}) == 1


def test_result_serialises():
    pool = generate_pool(10, 8, seed=1)
    r = solve(pool.mentees, pool.mentors)
    d = r.as_dict()
    assert d["matched"] == r.matched and d["objective"] == "max_total_score"
    assert d["gap"] == 0.0 and d["proven_optimal"] is True
    assert math.isfinite(d["upper_bound"])
