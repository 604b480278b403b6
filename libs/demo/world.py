"""The organisation the demo rolls a programme out in: countries, regions,
committees, waves and people, generated from a seed (same seed, same world).

Nothing here talks to a server: ``runner.py`` sends this world through the
public APIs. People are synthetic ("Mentee FR-0007"); no real name is used.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

# (ISO code, region, time zone, local language): 26 countries of a group.
COUNTRIES: tuple[tuple[str, str, str, str], ...] = (
    ("FR", "Europe", "Europe/Paris", "fr"),
    ("DE", "Europe", "Europe/Berlin", "de"),
    ("GB", "Europe", "Europe/London", "en"),
    ("US", "Americas", "America/New_York", "en"),
    ("ES", "Europe", "Europe/Madrid", "es"),
    ("IT", "Europe", "Europe/Rome", "it"),
    ("BR", "Americas", "America/Sao_Paulo", "pt"),
    ("IN", "Asia-Pacific", "Asia/Kolkata", "en"),
    ("CN", "Asia-Pacific", "Asia/Shanghai", "zh"),
    ("JP", "Asia-Pacific", "Asia/Tokyo", "ja"),
    ("NL", "Europe", "Europe/Amsterdam", "nl"),
    ("BE", "Europe", "Europe/Brussels", "fr"),
    ("PL", "Europe", "Europe/Warsaw", "pl"),
    ("CA", "Americas", "America/Toronto", "en"),
    ("MX", "Americas", "America/Mexico_City", "es"),
    ("CH", "Europe", "Europe/Zurich", "de"),
    ("SE", "Europe", "Europe/Stockholm", "sv"),
    ("PT", "Europe", "Europe/Lisbon", "pt"),
    ("SG", "Asia-Pacific", "Asia/Singapore", "en"),
    ("AU", "Asia-Pacific", "Australia/Sydney", "en"),
    ("AE", "Middle East & Africa", "Asia/Dubai", "ar"),
    ("ZA", "Middle East & Africa", "Africa/Johannesburg", "en"),
    ("IE", "Europe", "Europe/Dublin", "en"),
    ("CZ", "Europe", "Europe/Prague", "cs"),
    ("AR", "Americas", "America/Argentina/Buenos_Aires", "es"),
    ("CL", "Americas", "America/Santiago", "es"),
)

ENTITIES = ("Retail Banking", "Insurance", "Asset Management", "Corporate Banking", "Group Functions", "Leasing")
FUNCTIONS = ("finance", "marketing", "operations", "human_resources", "it", "sales", "risk", "legal")
THEMES = ("social_networks", "collaborative_tools", "data_ai", "cybersecurity", "new_business_models",
          "e_commerce", "personal_branding")
MENTEE_INTENTIONS = ("support_junior_career", "find_digital_profiles", "understand_digital_uses")
MENTOR_INTENTIONS = ("understand_businesses", "progress_own_field", "grow_network")
LEARNER_PROFILES = ("experiential", "theoretical", "mixed")


def committee_of(region: str) -> str:
    return f"HR committee {region}"


@dataclass
class Person:
    ref: str  # employee reference: the key the demo knows a person by
    role: str  # mentor | mentee
    country: str
    row: dict[str, Any]  # the import row (an enrolment)
    participant_id: str | None = None  # known once imported
    # The scenario's dice for this person, drawn once from the seed.
    qualifies: bool = True
    maturity: float = 2.5  # a mentee's digital maturity before the programme (1-5)
    engagement: float = 1.0  # how reliably they show up and answer (0-1)
    left: bool = False  # withdrew from the programme


@dataclass
class Wave:
    key: str  # "FR-1"
    country: str
    region: str
    name: str
    index: int  # 0: first wave of its country
    start_week: int
    mentees: list[Person] = field(default_factory=list)
    mentors: list[Person] = field(default_factory=list)
    wave_id: str | None = None

    @property
    def committee(self) -> str:
        return committee_of(self.region)


@dataclass
class World:
    seed: int
    countries: list[tuple[str, str, str, str]]
    waves: list[Wave]

    @property
    def regions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for code, region, _, _ in self.countries:
            out.setdefault(region, []).append(code)
        return out

    @property
    def languages(self) -> list[str]:
        return sorted({"en", *(lang for *_, lang in self.countries)})

    def people(self) -> list[Person]:
        return [p for w in self.waves for p in (*w.mentees, *w.mentors)]


def _split(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights``, each part at least 1 (largest remainders)."""
    n = len(weights)
    if total < n:
        raise ValueError(f"{total} people cannot fill {n} countries: give at least one per country")
    raw = [1 + (total - n) * w / sum(weights) for w in weights]
    parts = [math.floor(x) for x in raw]
    for i in sorted(range(n), key=lambda i: raw[i] - parts[i], reverse=True)[: total - sum(parts)]:
        parts[i] += 1
    return parts


def build_world(
    *, seed: int, countries: int, mentors: int, mentees: int, wave_size: int, second_wave_week: int
) -> World:
    """A group of ``countries`` countries (largest first) with ``mentors`` and
    ``mentees`` spread by country size; a country with more than ``wave_size``
    mentees runs a second wave starting at ``second_wave_week``."""
    if not 1 <= countries <= len(COUNTRIES):
        raise ValueError(f"countries must be 1-{len(COUNTRIES)}")
    rng = random.Random(seed)
    chosen = list(COUNTRIES[:countries])
    weights = [1.0 / (1 + i) ** 0.6 for i in range(countries)]  # a few big countries, a long tail
    mentee_counts, mentor_counts = _split(mentees, weights), _split(mentors, weights)
    waves: list[Wave] = []
    for (code, region, tz, lang), n_mentees, n_mentors in zip(chosen, mentee_counts, mentor_counts):
        n_waves = 2 if n_mentees > wave_size and n_mentors >= 2 else 1
        country_waves = [
            Wave(f"{code}-{i + 1}", code, region, f"{code} wave {i + 1}", i, 0 if i == 0 else second_wave_week)
            for i in range(n_waves)
        ]
        mentees_ = [_person(rng, "mentee", code, tz, lang, i + 1) for i in range(n_mentees)]
        mentors_ = [_person(rng, "mentor", code, tz, lang, i + 1) for i in range(n_mentors)]
        # Two waves: the first takes the larger share of each side (a pilot, then a second intake).
        cut_mentees, cut_mentors = (math.ceil(0.55 * n_mentees), math.ceil(0.55 * n_mentors)) if n_waves == 2 else (
            n_mentees, n_mentors)
        country_waves[0].mentees, country_waves[0].mentors = mentees_[:cut_mentees], mentors_[:cut_mentors]
        if n_waves == 2:
            country_waves[1].mentees, country_waves[1].mentors = mentees_[cut_mentees:], mentors_[cut_mentors:]
        waves += country_waves
    return World(seed, chosen, waves)


def _themes(rng: random.Random, low: int, high: int, levels: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"theme": t, "level": rng.randint(*levels)} for t in rng.sample(THEMES, rng.randint(low, high))]


def _common(rng: random.Random, role: str, code: str, tz: str, lang: str, n: int) -> dict[str, Any]:
    tag = f"{code}-{n:04d}"
    languages = ["en"] if lang == "en" else (["en", lang] if rng.random() < 0.8 else [lang, "en"])
    return {
        "role": role,
        "employee_ref": f"E-{'MTE' if role == 'mentee' else 'MTR'}-{tag}",
        "display_name": f"{role.capitalize()} {tag}",
        "email": f"{role}.{tag.lower()}@example.com",
        "entity": rng.choice(ENTITIES),
        "business_function": rng.choice(FUNCTIONS),
        "languages": languages,
        "time_zone": tz,
        "learner_profile": rng.choice(LEARNER_PROFILES),
    }


# What differs between the two sides: executives (mentees) and digital natives (mentors).
ROLES: dict[str, dict[str, Any]] = {
    "mentee": {"motivation": "I want to understand how digital changes my business and my teams.",
               "job_level": (13, 18), "tenure_years": (8, 30), "birth_year": (1962, 1982),
               "intentions": MENTEE_INTENTIONS, "themes": ("themes_wanted", 1, 2, (1, 2)),
               "extra": ("sessions_per_month", (1, 2, 2)), "engagement": (8, 1.5)},
    "mentor": {"motivation": "I want to share what I know and understand how the company works.",
               "job_level": (2, 6), "tenure_years": (0, 5), "birth_year": (1994, 2003),
               "intentions": MENTOR_INTENTIONS, "themes": ("themes_offered", 3, 5, (3, 5)),
               "extra": ("capacity", (2, 2, 3, 3, 3)), "engagement": (9, 1.2)},
}


def _person(rng: random.Random, role: str, code: str, tz: str, lang: str, n: int) -> Person:
    spec = ROLES[role]
    themes_field, low, high, levels = spec["themes"]
    extra_field, extra_choices = spec["extra"]
    row = _common(rng, role, code, tz, lang, n) | {
        "motivation": spec["motivation"],
        "job_level": rng.randint(*spec["job_level"]),
        "tenure_years": rng.randint(*spec["tenure_years"]),
        "birth_year": rng.randint(*spec["birth_year"]),
        "intentions": rng.sample(spec["intentions"], rng.randint(1, 2)),
        themes_field: _themes(rng, low, high, levels),
        extra_field: rng.choice(extra_choices),
    }
    person = Person(row["employee_ref"], role, code, row, engagement=rng.betavariate(*spec["engagement"]))
    if role == "mentee":
        person.maturity = rng.uniform(1.6, 3.4)  # digital maturity before the programme, 1-5
    else:
        person.qualifies = rng.random() < 0.93  # a few fail the case study or skip the training
    return person
