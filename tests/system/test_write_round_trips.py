"""A command's round trips on the assembled platform (``binome up``, its
PostgreSQL counting statements with pg_stat_statements).

An enrolment sends no SAVEPOINT: the append catches a version taken
meanwhile on the server (event-store migration ``append_events``) and
enrollment writes its read model without one (bench/README.md, the fifth
pass of api.py: each savepoint is two round trips). And the race a savepoint
used to serve still ends as it should: two enrolments of one person at once,
in two waves, make one 201 and one 409 naming the winner.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.enrollment import mentee, programme_body, wave_body
from tests.support.platform_process import PlatformProcess, auth
from tests.support.statements import StatementCounts, preload_statement_counts

ORG = "org-round-trips"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    directory = tmp_path_factory.mktemp("platform")
    preload_statement_counts(directory / "data")  # PlatformProcess's data directory
    with PlatformProcess.start(directory) as running:
        yield running


def test_an_enrolment_and_its_consumers_send_no_savepoint(platform: PlatformProcess) -> None:
    token = platform.token("hr-1", ORG, ["hr_admin"])
    programme = platform.post("/enrollment/v1/programmes", programme_body(), auth(token))["programme_id"]
    wave = platform.post(f"/enrollment/v1/programmes/{programme}/waves", wave_body("FR"), auth(token))["wave_id"]
    counts = StatementCounts(platform)
    counts.reset()
    enrolled = platform.post(f"/enrollment/v1/waves/{wave}/participants", mentee("RT-1"), auth(token))
    sent = counts.read()
    appends = [q for q in sent if "append_events" in q]
    assert enrolled["participant_id"] and appends, sorted(sent)
    assert [q for q in sent if q.upper().startswith(("SAVEPOINT", "RELEASE"))] == [], sorted(sent)


def test_an_enrolment_finds_what_it_checks_in_three_statements(platform: PlatformProcess) -> None:
    """The wave held, its programme named and the person's enrolment looked
    up in one statement; the wave's and the programme's events read in one;
    the participant's key made in one (a new person's key is never there to
    look up first). Before: seven round trips for the same answers."""
    token = platform.token("hr-3", ORG, ["hr_admin"])
    programme = platform.post("/enrollment/v1/programmes", programme_body(), auth(token))["programme_id"]
    wave = platform.post(f"/enrollment/v1/programmes/{programme}/waves", wave_body("FR"), auth(token))["wave_id"]
    counts = StatementCounts(platform)
    counts.reset()
    platform.post(f"/enrollment/v1/waves/{wave}/participants", mentee("RT-3"), auth(token))
    sent = counts.read()

    def calls(*words: str) -> int:
        return sum(n for q, n in sent.items() if all(w in q for w in words))

    assert calls("FROM enrollment.waves w", "FOR SHARE OF w") == 1, sorted(sent)
    assert calls("FROM enrollment.events", "stream_id = ANY") == 1, sorted(sent)
    assert calls("FROM enrollment.events", "stream_id = $1") == 0, sorted(sent)
    assert calls("INSERT INTO binome_vault.data_keys") == 1, sorted(sent)
    assert [q for q in sent if q.startswith("SELECT region, wrapped_key FROM binome_vault.data_keys")] == [], sorted(sent)
    # The person again: 409 naming the first enrolment, found by the same statement.
    again = httpx.post(f"{platform.base_url}/enrollment/v1/waves/{wave}/participants", json=mentee("RT-3"),
                       headers=auth(token), timeout=30)
    assert again.status_code == 409, again.text
    assert again.json()["existing_participant_id"]


def test_two_enrolments_of_one_person_at_once_make_one_409_naming_the_winner(platform: PlatformProcess) -> None:
    token = platform.token("hr-2", ORG, ["hr_admin"])
    programme = platform.post("/enrollment/v1/programmes", programme_body(), auth(token))["programme_id"]
    waves = [platform.post(f"/enrollment/v1/programmes/{programme}/waves", wave_body(c), auth(token))["wave_id"]
             for c in ("FR", "DE")]

    def enrol(wave: str) -> httpx.Response:
        with httpx.Client(base_url=platform.base_url, timeout=30) as http:
            return http.post(f"/enrollment/v1/waves/{wave}/participants", json=mentee("RT-RACE"), headers=auth(token))

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(enrol, waves))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 201).json()
    loser = next(r for r in responses if r.status_code == 409).json()
    assert loser["existing_participant_id"] == winner["participant_id"]
