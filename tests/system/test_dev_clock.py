"""The dev clock on the assembled platform: dev mode only, the ``dev_clock``
role only, at most two years ahead (per call and in total), and what it keeps
across a restart of the dev stack stays within that bound (issue 14)."""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timedelta

from tests.support.platform_process import PlatformProcess, auth

TWO_YEARS = timedelta(days=731).total_seconds()


def advance(platform: PlatformProcess, token: str, body: dict) -> tuple[int, dict]:
    response = platform.http.post("/v1/dev/clock:advance", json=body, headers=auth(token))
    return response.status_code, response.json()


def offset(platform: PlatformProcess, token: str) -> float:
    return platform.http.get("/v1/dev/clock", headers=auth(token)).json()["offset_seconds"]


def test_only_the_dev_clock_role_reads_or_moves_it(platform: PlatformProcess) -> None:
    org = "org-clock-roles"
    for roles in (["hr_admin"], ["ops"], ["hr_admin", "ops", "regional_committee"], ["participant"]):
        other = platform.token("someone", org, roles, ["FR"])
        assert platform.http.get("/v1/dev/clock", headers=auth(other)).status_code == 403
        assert advance(platform, other, {"seconds": 60})[0] == 403
    mover = platform.token("clock-1", org, ["dev_clock"])
    assert platform.http.get("/v1/dev/clock", headers=auth(mover)).status_code == 200
    # The role grants nothing else.
    assert platform.http.get("/enrollment/v1/programmes", headers=auth(mover)).status_code == 403


def test_the_clock_is_bounded_per_call_and_in_total_and_kept_within_bounds_across_a_restart(
    platform: PlatformProcess,
) -> None:
    mover = platform.token("clock-2", "org-clock-bounds", ["dev_clock"])
    start = offset(platform, mover)
    for body, field in (
        ({"seconds": TWO_YEARS + 1}, "body.seconds"),
        ({"to": "9999-12-31T23:59:59+00:00"}, "body.to"),
        ({"to": "0001-01-01T00:00:00+00:00"}, "body.to"),
        ({"to": (datetime.now().astimezone() + timedelta(days=1000)).isoformat()}, "body.to"),
    ):
        status, problem = advance(platform, mover, body)
        assert status == 422 and problem["errors"][0]["field"] == field, problem
    assert offset(platform, mover) == start

    assert advance(platform, mover, {"seconds": 400 * 86400})[0] == 200
    status, problem = advance(platform, mover, {"seconds": TWO_YEARS - 400 * 86400 + 86400})
    assert status == 422 and problem["errors"][0]["field"] == "body.seconds", problem
    reached = offset(platform, mover)
    assert 400 * 86400 <= reached - start < TWO_YEARS

    hr = platform.token("hr-clock", "org-clock-bounds", ["hr_admin"])
    assert platform.http.get("/enrollment/v1/programmes", headers=auth(hr)).status_code == 200

    # A restart of the dev stack goes on from the offset reached, never back...
    platform.stop()
    platform.launch()
    assert offset(platform, mover) >= reached
    # ...and an offset edited in the data dir is not honoured past the bound.
    platform.stop()
    (platform.data_dir / "dev-clock").write_text(f"{100 * 365 * 86400}\n")
    platform.launch()
    assert offset(platform, mover) == TWO_YEARS
    assert platform.http.get("/enrollment/v1/programmes", headers=auth(hr)).status_code == 200


def test_outside_dev_mode_there_is_no_dev_clock_even_when_asked_for(tmp_path) -> None:
    keys = json.dumps({"global": base64.b64encode(os.urandom(32)).decode()})
    env = {"BINOME_DEV_MODE": "false", "BINOME_DEV_CLOCK": "true", "BINOME_VAULT_MASTER_KEYS": keys}
    with PlatformProcess.start(tmp_path, env=env) as production:
        mover = production.token("clock-3", "org-clock-prod", ["dev_clock"])
        assert production.http.get("/v1/dev/clock", headers=auth(mover)).status_code == 404
        assert advance(production, mover, {"seconds": 60})[0] == 404
