"""Deterministic, realistic synthetic pools of matching participants for the
tests and the benchmark (bench/matching.py); not part of the service.

A multinational group in 26 countries with a few subsidiaries each, business
functions in families, digital themes, learner profiles and intentions. Mentees
are executives (senior job levels, older generations, want 2-4 themes at low
levels); mentors are juniors (younger, offer 2-5 themes at higher levels,
capacity 1-3). A few reporting lines, earlier partners and HR exclusions make
the hard constraints bite. Same seed, same pool.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.matching.domain.profiles import LearnerProfile, PairConstraints, Participant, Role

__all__ = ["COUNTRIES", "FUNCTIONS", "THEMES", "Pool", "generate_pool", "generate_tight_pool"]

# code, UTC offset (h), languages, relative size
COUNTRIES: tuple[tuple[str, float, tuple[str, ...], int], ...] = (
    ("FR", 1, ("fr",), 14),
    ("US", -5, ("en",), 10),
    ("DE", 1, ("de",), 8),
    ("GB", 0, ("en",), 7),
    ("IT", 1, ("it",), 6),
    ("ES", 1, ("es",), 5),
    ("BE", 1, ("fr", "nl"), 4),
    ("NL", 1, ("nl",), 3),
    ("CH", 1, ("de", "fr"), 3),
    ("PL", 1, ("pl",), 3),
    ("PT", 0, ("pt",), 2),
    ("SE", 1, ("sv",), 2),
    ("CA", -5, ("en", "fr"), 3),
    ("MX", -6, ("es",), 2),
    ("BR", -3, ("pt",), 4),
    ("AR", -3, ("es",), 1),
    ("CL", -4, ("es",), 1),
    ("CO", -5, ("es",), 1),
    ("MA", 1, ("fr", "ar"), 2),
    ("ZA", 2, ("en",), 2),
    ("AE", 4, ("ar", "en"), 1),
    ("IN", 5.5, ("en", "hi"), 5),
    ("CN", 8, ("zh",), 3),
    ("SG", 8, ("en", "zh"), 2),
    ("JP", 9, ("ja",), 2),
    ("AU", 10, ("en",), 2),
)
BUSINESS_LINES = ("Retail Banking", "Insurance", "Asset Management", "Corporate & Investment", "Consumer Finance", "Leasing")
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "finance": ("Finance", "Accounting", "Risk", "Audit"),
    "technology": ("IT", "Data", "Cybersecurity", "Digital Product"),
    "commercial": ("Sales", "Marketing", "Customer Service"),
    "operations": ("Operations", "Supply Chain", "Procurement"),
    "support": ("HR", "Legal", "Communication", "Strategy"),
}
THEMES = (
    "generative_ai", "machine_learning", "data_literacy", "data_visualisation", "cybersecurity", "cloud",
    "agile", "design_thinking", "ux_design", "social_media", "personal_branding", "e_commerce",
    "digital_marketing", "automation_rpa", "low_code", "blockchain", "iot", "remote_collaboration",
    "digital_payments", "green_it", "open_innovation", "video_content", "gaming", "digital_ethics",
)  # fmt: skip
MENTEE_INTENTIONS = (
    "support_junior_career", "find_digital_profiles", "understand_digital_culture",
    "build_digital_skills", "transform_my_team",
)  # fmt: skip
MENTOR_INTENTIONS = ("understand_company_businesses", "progress_in_own_field", "build_network", "gain_visibility")
EXTRA_LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "zh", "ar")


@dataclass(frozen=True)
class Pool:
    mentees: tuple[Participant, ...]
    mentors: tuple[Participant, ...]
    constraints: PairConstraints

    @property
    def slots(self) -> int:
        return sum(m.capacity for m in self.mentors)


def _pick(rng: random.Random, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


class _Factory:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.entities = {
            code: tuple(f"{line} {code}" for line in rng.sample(BUSINESS_LINES, k=2 + min(3, size // 4)))
            for code, _, _, size in COUNTRIES
        }
        self.country_weights = [size for *_, size in COUNTRIES]
        self.seq = 0
        self.exec_refs: dict[str, list[str]] = {code: [] for code, *_ in COUNTRIES}

    def _languages(self, native: tuple[str, ...], p_english: float) -> frozenset[str]:
        rng = self.rng
        langs = {native[0]} if rng.random() < 0.7 else set(native)
        if rng.random() < p_english:
            langs.add("en")
        if rng.random() < 0.15:
            langs.add(rng.choice(EXTRA_LANGUAGES))
        return frozenset(langs)

    def _function(self, tech_bias: float) -> tuple[str, str]:
        rng = self.rng
        family = "technology" if rng.random() < tech_bias else rng.choice(tuple(FUNCTIONS))
        return rng.choice(FUNCTIONS[family]), family

    def mentee(self) -> Participant:
        rng = self.rng
        self.seq += 1
        code, tz, native, _ = _pick(rng, COUNTRIES, self.country_weights)
        ref = f"E{self.seq:07d}"
        self.exec_refs[code].append(ref)
        function, family = self._function(0.12)
        themes = rng.sample(THEMES, k=rng.choice((2, 3, 3, 4)))
        return Participant(
            id=f"mentee-{self.seq:06d}",
            role=Role.MENTEE,
            country=code,
            entity=rng.choice(self.entities[code]),
            function=function,
            function_family=family,
            job_level=_pick(rng, (4, 5, 6, 7, 8, 9), (5, 25, 30, 20, 12, 8)),
            tenure_years=round(rng.uniform(4, 32), 1),
            generation=_pick(rng, ("baby_boomer", "gen_x", "gen_y"), (25, 60, 15)),
            languages=self._languages(native, 0.85),
            tz_offset_hours=tz,
            learner_profile=_pick(rng, tuple(LearnerProfile), (45, 25, 30)),
            intentions=frozenset(rng.sample(MENTEE_INTENTIONS, k=rng.choice((1, 2)))),
            themes={t: _pick(rng, (1, 2, 3), (50, 35, 15)) for t in themes},
            sessions_per_month=float(rng.choice((1, 1, 2))),
            manager_ref=f"B{rng.randrange(10**6):06d}",
            employee_ref=ref,
        )

    def mentor(self) -> Participant:
        rng = self.rng
        self.seq += 1
        code, tz, native, _ = _pick(rng, COUNTRIES, self.country_weights)
        ref = f"E{self.seq:07d}"
        function, family = self._function(0.4)
        capacity = _pick(rng, (1, 2, 3), (50, 30, 20))
        themes = rng.sample(THEMES, k=rng.choice((2, 3, 4, 5)))
        manager_ref, chain = f"B{rng.randrange(10**6):06d}", ()
        execs = self.exec_refs[code]
        if execs and rng.random() < 0.04:  # reports to an executive of the pool, directly or further up
            if rng.random() < 0.5:
                manager_ref = rng.choice(execs)
            else:
                chain = (manager_ref, rng.choice(execs))
        return Participant(
            id=f"mentor-{self.seq:06d}",
            role=Role.MENTOR,
            country=code,
            entity=rng.choice(self.entities[code]),
            function=function,
            function_family=family,
            job_level=_pick(rng, (1, 2, 3, 4, 5, 6), (25, 30, 22, 13, 7, 3)),
            tenure_years=round(rng.uniform(0.5, 9), 1),
            generation=_pick(rng, ("gen_z", "gen_y"), (55, 45)),
            languages=self._languages(native, 0.9),
            tz_offset_hours=tz,
            learner_profile=_pick(rng, tuple(LearnerProfile), (50, 20, 30)),
            intentions=frozenset(rng.sample(MENTOR_INTENTIONS, k=rng.choice((1, 2)))),
            themes={t: _pick(rng, (2, 3, 4, 5), (20, 35, 30, 15)) for t in themes},
            sessions_per_month=float(capacity * rng.choice((1, 1, 2))),
            capacity=capacity,
            manager_ref=manager_ref,
            employee_ref=ref,
            manager_chain=chain,
        )


def _constraints(rng: random.Random, mentees, mentors) -> PairConstraints:
    earlier = {(e.id, rng.choice(mentors).id) for e in mentees if rng.random() < 0.01}
    excluded = {(e.id, rng.choice(mentors).id) for e in mentees if rng.random() < 0.005}
    return PairConstraints(earlier_partners=frozenset(earlier), excluded=frozenset(excluded))


def generate_pool(n_mentees: int, n_mentors: int, seed: int = 0) -> Pool:
    f = _Factory(seed)
    mentees = tuple(f.mentee() for _ in range(n_mentees))
    mentors = tuple(f.mentor() for _ in range(n_mentors))
    if not mentees or not mentors:
        return Pool(mentees, mentors, PairConstraints())
    return Pool(mentees, mentors, _constraints(f.rng, mentees, mentors))


def generate_tight_pool(n_mentees: int, slack: float = 0.02, seed: int = 0) -> Pool:
    """Mentors are drawn until their slots barely exceed the mentees (by ``slack``)."""
    f = _Factory(seed)
    mentees = tuple(f.mentee() for _ in range(n_mentees))
    mentors, slots = [], 0
    while slots < n_mentees * (1.0 + slack):
        m = f.mentor()
        mentors.append(m)
        slots += m.capacity
    return Pool(mentees, tuple(mentors), _constraints(f.rng, mentees, mentors))
