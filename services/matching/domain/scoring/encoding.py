"""Both sides of a score matrix encoded once, so that the sum of every
criterion is one matrix product ``F @ G``.

Every criterion is a product of a mentee-side row and a mentor-side column:
one-hot codes of a categorical key on one side, the criterion's table on the
other; theme and intention bags likewise. Hard constraints that depend on
categorical keys (seniority, time zone when hard) subtract ``PENALTY`` in the
same product. Shared languages are counted by a second, small product, and
the cross-entity bonus is a constant minus a sparse correction (see
``Encoding``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..profiles import MAX_LEVEL, Criterion, MatchingPolicy, Participant
from .criteria import (
    best_intention,
    mentor_time_per_mentee,
    raw_availability,
    raw_cross_entity,
    raw_function,
    raw_generation,
    raw_learner,
    raw_time_zone,
    seniority_violated,
    theme_credit,
    tz_too_far,
)

# Hard constraints inside F @ G subtract this penalty. A power of two above any
# score, so that adding it back (shared language) is exact to ~1e-13, and any
# penalised pair lands below CUT while every feasible score is >= 0.
PENALTY = 1024.0
CUT = -0.5
_TABLE_MAX_CELLS = 250_000  # above this, a categorical criterion is computed elementwise


def codes(keys: Sequence[Hashable]) -> tuple[np.ndarray, list[Hashable]]:
    """Each key's code (first seen, first code) and the distinct keys."""
    index: dict[Hashable, int] = {}
    out = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
    return out, list(index)


@dataclass
class Categorical:
    """A criterion (or penalty) that depends on one key per side."""

    name: str
    coef: float  # 100 * share (0 for a pure penalty)
    mentee_keys: Sequence[Hashable]
    mentor_keys: Sequence[Hashable]
    raw: Callable[[Any, Any], float] | None  # scalar raw value, used for tables
    raw_vec: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None  # elementwise fallback
    penalty: Callable[[Any, Any], bool] | None = None
    penalty_vec: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


@dataclass
class Elementwise:
    """A categorical criterion with too many distinct values for a table:
    computed on the keys' values in each block."""

    coef: float
    mentee_values: np.ndarray
    mentor_values: np.ndarray
    criterion: Categorical


@dataclass
class Entities:
    """The cross-entity bonus: ``constant`` for every pair (inside F @ G), plus
    ``same`` for same-entity pairs."""

    constant: float
    same: float
    mentee_codes: np.ndarray  # entity code per mentee
    mentor_codes: np.ndarray  # entity code per mentor
    mentors: np.ndarray  # mentor columns grouped by entity code
    ptr: np.ndarray  # mentors[ptr[c]:ptr[c + 1]] have entity code c


@dataclass
class Encoding:
    F: np.ndarray  # mentees x features
    G: np.ndarray  # features x mentors
    elementwise: list[Elementwise]
    lang_e: np.ndarray  # mentees x languages, float32 0/1
    lang_m: np.ndarray  # languages x mentors
    lang_coef: float
    entities: Entities


@dataclass
class _Blocks:
    """The F and G blocks under construction."""

    f: list[np.ndarray] = field(default_factory=list)
    g: list[np.ndarray] = field(default_factory=list)

    def add(self, f: np.ndarray, g: np.ndarray) -> None:
        self.f.append(f)
        self.g.append(g)


def encode(mentees: Sequence[Participant], mentors: Sequence[Participant], policy: MatchingPolicy) -> Encoding:
    ne, nm = len(mentees), len(mentors)
    coef = {c: 100.0 * policy.share(c) for c in policy.weights}
    blocks = _Blocks()
    _language_constant(blocks, ne, nm, policy, coef[Criterion.LANGUAGE])
    if coef[Criterion.THEMES] > 0:
        _themes(blocks, mentees, mentors, policy, coef[Criterion.THEMES])
    if coef[Criterion.INTENTIONS] > 0:
        _intentions(blocks, mentees, mentors, policy, coef[Criterion.INTENTIONS])
    elementwise: list[Elementwise] = []
    for cat in _categoricals(mentees, mentors, policy, coef):
        if cat.coef == 0 and cat.penalty is None:
            continue
        done = _table(cat, ne)
        if done is None:
            elementwise.append(
                Elementwise(
                    cat.coef,
                    np.asarray(cat.mentee_keys, dtype=np.float64),
                    np.asarray(cat.mentor_keys, dtype=np.float64),
                    cat,
                )
            )
        else:
            blocks.add(*done)
    F = np.ascontiguousarray(np.hstack(blocks.f)) if blocks.f else np.zeros((ne, 1))
    G = np.ascontiguousarray(np.vstack(blocks.g)) if blocks.g else np.zeros((1, nm))
    lang_e, lang_m = _languages(mentees, mentors)
    entity = _entities(mentees, mentors, coef[Criterion.CROSS_ENTITY])
    if entity.constant:
        F = np.hstack([F, np.ones((ne, 1))])
        G = np.vstack([G, np.full((1, nm), entity.constant)])
    return Encoding(
        F=F,
        G=G,
        elementwise=elementwise,
        lang_e=lang_e,
        lang_m=lang_m,
        lang_coef=coef[Criterion.LANGUAGE],
        entities=entity,
    )


def _language_constant(blocks: _Blocks, ne: int, nm: int, policy: MatchingPolicy, coef: float) -> None:
    """When a shared language is required, every feasible pair shares one (raw
    value 1): a constant, minus the penalty that each block adds back when a
    language is shared."""
    if policy.language_hard:
        blocks.add(np.ones((ne, 1)), np.full((1, nm), -PENALTY))
        if coef > 0:
            blocks.add(np.ones((ne, 1)), np.full((1, nm), coef))


def _themes(blocks: _Blocks, E: Sequence[Participant], M: Sequence[Participant], p: MatchingPolicy, coef: float) -> None:
    """Bag of wanted themes: F[e, (t, le)] = 1/|wanted e|; G[(t, le), m] = coef * credit(le, level_m(t))."""
    columns: dict[tuple[str, int], int] = {}
    rows_e, cols_e, vals_e = [], [], []
    for i, e in enumerate(E):
        if e.themes:
            inv = 1.0 / len(e.themes)
            for theme, level in e.themes:
                rows_e.append(i)
                cols_e.append(columns.setdefault((theme, level), len(columns)))
                vals_e.append(inv)
    if not columns:
        return
    Fth = np.zeros((len(E), len(columns)))
    Fth[rows_e, cols_e] = vals_e
    theme_ids = {t: k for k, t in enumerate(sorted({t for t, _ in columns}))}
    mentor_levels = np.zeros((len(M), len(theme_ids)), dtype=np.int64)
    for j, m in enumerate(M):
        for theme, level in m.themes:
            k = theme_ids.get(theme)
            if k is not None:
                mentor_levels[j, k] = level
    credit = np.array([[theme_credit(le, lm, p) for lm in range(MAX_LEVEL + 1)] for le in range(MAX_LEVEL + 1)])
    col_theme = np.array([theme_ids[t] for t, _ in columns])
    col_level = np.array([le for _, le in columns])
    blocks.add(Fth, coef * credit[col_level[:, None], mentor_levels[:, col_theme].T])


def _intentions(blocks: _Blocks, E: Sequence[Participant], M: Sequence[Participant], p: MatchingPolicy, coef: float) -> None:
    """Bag of intentions: F[e, i] = 1/|E_e|; G[i, m] = coef * max_{j in M_m} compat(i, j)."""
    labels = sorted({i for e in E for i in e.intentions})
    if not labels:
        return
    lab = {x: k for k, x in enumerate(labels)}
    Fin = np.zeros((len(E), len(labels)))
    for r, e in enumerate(E):
        if e.intentions:
            inv = 1.0 / len(e.intentions)
            for x in e.intentions:
                Fin[r, lab[x]] = inv
    set_codes, sets = codes([m.intentions for m in M])
    per_set = np.array([[coef * best_intention(x, s, p)[0] for s in sets] for x in labels]).reshape(len(labels), len(sets))
    blocks.add(Fin, per_set[:, set_codes])


def _categoricals(
    E: Sequence[Participant], M: Sequence[Participant], p: MatchingPolicy, coef: dict[Criterion, float]
) -> list[Categorical]:
    cats = [
        Categorical(
            "learner",
            coef[Criterion.LEARNER_PROFILE],
            [e.learner_profile for e in E],
            [m.learner_profile for m in M],
            lambda a, b: raw_learner(a, b, p),
        ),
        Categorical(
            "function",
            coef[Criterion.FUNCTION],
            [(e.function, e.function_family) for e in E],
            [(m.function, m.function_family) for m in M],
            lambda a, b: raw_function(a, b, p),
        ),
        Categorical(
            "generation",
            coef[Criterion.GENERATION],
            [e.generation for e in E],
            [m.generation for m in M],
            lambda a, b: raw_generation(a, b, p),
        ),
        Categorical(
            "time_zone",
            coef[Criterion.TIME_ZONE],
            [float(e.tz_offset_hours) for e in E],
            [float(m.tz_offset_hours) for m in M],
            lambda a, b: float(raw_time_zone(a, b, p)),
            raw_vec=lambda a, b: raw_time_zone(a, b, p),
            penalty=(lambda a, b: bool(tz_too_far(a, b, p))) if p.tz_hard else None,
            penalty_vec=(lambda a, b: tz_too_far(a, b, p)) if p.tz_hard else None,
        ),
        Categorical(
            "availability",
            coef[Criterion.AVAILABILITY],
            [float(e.sessions_per_month) for e in E],
            [mentor_time_per_mentee(m) for m in M],
            lambda a, b: float(raw_availability(a, b)),
            raw_vec=raw_availability,
        ),
    ]
    if p.seniority_min_gap is not None:
        cats.append(
            Categorical(
                "seniority",
                0.0,
                [int(e.job_level) for e in E],
                [int(m.job_level) for m in M],
                None,
                penalty=(lambda a, b: bool(seniority_violated(a, b, p.seniority_min_gap))),
                penalty_vec=lambda a, b: seniority_violated(a, b, p.seniority_min_gap),
            )
        )
    return cats


def _table(cat: Categorical, ne: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The criterion's (one-hot, table) blocks; None when its distinct values
    are too many for a table (it is then computed elementwise)."""
    ce, ue = codes(cat.mentee_keys)
    cm, um = codes(cat.mentor_keys)
    if len(ue) * len(um) > _TABLE_MAX_CELLS and cat.raw_vec is not None:
        return None
    table = np.zeros((len(ue), len(um)))
    for a, ka in enumerate(ue):
        for b, kb in enumerate(um):
            v = cat.coef * cat.raw(ka, kb) if cat.coef else 0.0
            if cat.penalty is not None and cat.penalty(ka, kb):
                v -= PENALTY
            table[a, b] = v
    onehot = np.zeros((ne, len(ue)))
    onehot[np.arange(ne), ce] = 1.0
    return onehot, table[:, cm]


def _languages(E: Sequence[Participant], M: Sequence[Participant]) -> tuple[np.ndarray, np.ndarray]:
    """0/1 language matrices whose product counts shared languages (float32, exact for counts)."""
    langs = sorted({x for q in (*E, *M) for x in q.languages})
    li = {x: k for k, x in enumerate(langs)}
    lang_e = np.zeros((len(E), max(len(langs), 1)), dtype=np.float32)
    lang_m = np.zeros((max(len(langs), 1), len(M)), dtype=np.float32)
    for r, e in enumerate(E):
        for x in e.languages:
            lang_e[r, li[x]] = 1.0
    for c, m in enumerate(M):
        for x in m.languages:
            lang_m[li[x], c] = 1.0
    return lang_e, lang_m


def _entities(E: Sequence[Participant], M: Sequence[Participant], coef: float) -> Entities:
    """The cross-entity bonus as a constant, minus a sparse correction for
    same-entity pairs (entities are many and mostly different, so this is
    cheaper than a one-hot block)."""
    constant = coef * raw_cross_entity("a", "b")
    ent_codes, _ = codes([q.entity for q in (*E, *M)])
    entity_m = ent_codes[len(E) :]
    n_codes = int(ent_codes.max(initial=-1)) + 1
    ptr = np.zeros(n_codes + 1, dtype=np.int64)
    np.cumsum(np.bincount(entity_m, minlength=n_codes), out=ptr[1:])
    return Entities(
        constant=constant,
        same=coef * raw_cross_entity("a", "a") - constant,
        mentee_codes=ent_codes[: len(E)],
        mentor_codes=entity_m,
        mentors=np.argsort(entity_m, kind="stable"),
        ptr=ptr,
    )
