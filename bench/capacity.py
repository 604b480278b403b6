#!/usr/bin/env python
"""What one programme holds, measured: the figures behind the README's
"What a programme holds" (issue 19).

Run from the repository root::

    .venv/bin/python bench/capacity.py            # 10,000 participants in one wave; 300 waves in 60 countries
    .venv/bin/python bench/capacity.py --participants 2000 --waves 60 --countries 20   # about 20 s

Through enrollment's HTTP API (the app in process over an ASGI transport,
auth, audit, idempotency and body limits included) on real PostgreSQL
(embedded in a temporary directory, or ``BINOME_DATABASE_URL``):

1. **participants per wave**: ``--participants`` people (a tenth mentors)
   imported into one wave by ``participants:import`` in JSON files of
   ``--file-rows`` rows (a file must stay under the 5 MB body limit), then
   every one listed back page by page, and the wave's funnel;
2. **waves per programme and countries**: ``--waves`` waves opened in one
   programme, spread over ``--countries`` countries, then listed back, and
   one country's waves alone.

The matching run over a wave of that size is measured by
``bench/matching.py`` (1,500 × 3,000 and 10,000 × 20,000 solves).

It prints a table and writes ``bench/out/capacity.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/capacity.py` from anywhere

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.pipeline import start_stack  # noqa: E402
from libs.auth.devkeys import mint  # noqa: E402
from libs.auth.tokens import TokenVerifier  # noqa: E402
from libs.database import create_pool  # noqa: E402
from libs.eventstore.migrations import migrate  # noqa: E402
from libs.eventstore.store import EventStore  # noqa: E402
from libs.gdpr.masters import MasterKeys  # noqa: E402
from libs.gdpr.personal import PersonalData  # noqa: E402
from libs.gdpr.vault import KeyVault, migrate_vault  # noqa: E402
from libs.runtime.service import ServiceContext  # noqa: E402
from libs.settings import Settings  # noqa: E402
from services.enrollment import SERVICE  # noqa: E402

#: ISO 3166-1 alpha-2 codes the waves are spread over (the first ``--countries``).
COUNTRIES = (
    "FR DE IT ES PT NL BE LU CH AT PL CZ SK HU RO BG GR SE NO DK FI IE GB US CA MX BR AR CL CO PE "
    "ZA NG KE MA EG AE SA TR IN CN JP KR SG MY TH VN ID PH AU NZ IL UA RS HR SI EE LV LT IS MT"
).split()
PAGE = 100


def person(ref: str, role: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "role": role, "employee_ref": ref, "display_name": f"Person {ref}", "email": f"{ref.lower()}@example.com",
        "motivation": "Learn and share.", "entity": "Acme", "business_function": "finance",
        "job_level": 10 if role == "mentee" else 2, "tenure_years": 12 if role == "mentee" else 1,
        "languages": ["en"], "time_zone": "Europe/Paris", "learner_profile": "experiential",
        "intentions": ["find_digital_profiles"] if role == "mentee" else ["understand_businesses"],
    }
    if role == "mentee":
        body["themes_wanted"] = [{"theme": "data_ai", "level": 1}]
    else:
        body["themes_offered"], body["capacity"] = [{"theme": "data_ai", "level": 4}], 2
    return body


class Api:
    def __init__(self, client: httpx.AsyncClient, data_dir: Path) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {mint('bench-hr', 'org-bench', ['hr_admin'], data_dir=data_dir)}"}

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = await self.client.request(method, path, json=body, params=params or None, headers=self.headers)
        if not response.is_success:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    async def all_pages(self, path: str, **params: Any) -> list[dict]:
        items, cursor = [], None
        while True:
            page = await self.call("GET", path, limit=PAGE, **params, **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def timed(started: float) -> float:
    return round(time.perf_counter() - started, 3)


async def one_wave(api: Api, programme: str, participants: int, file_rows: int) -> dict[str, Any]:
    wave = await api.call("POST", f"/v1/programmes/{programme}/waves", {
        "name": "Big wave", "region": "Europe", "country": "FR", "committee": "committee-fr",
        "starts_on": "2026-01-05", "ends_on": "2099-06-30", "target_pairs": max(1, participants // 2),
    })  # fmt: skip
    rows = [person(f"P{i:07d}", "mentor" if i % 10 == 0 else "mentee") for i in range(participants)]
    started = time.perf_counter()
    for first in range(0, participants, file_rows):
        report = await api.call("POST", f"/v1/waves/{wave['wave_id']}/participants:import", rows[first:first + file_rows])
        if report["imported"] != len(rows[first:first + file_rows]):
            raise RuntimeError(f"import: {report}")
    imported_s = timed(started)
    started = time.perf_counter()
    listed = await api.all_pages("/v1/participants", wave_id=wave["wave_id"])
    listed_s = timed(started)
    started = time.perf_counter()
    funnel = await api.call("GET", f"/v1/waves/{wave['wave_id']}/funnel")
    funnel_s = timed(started)
    if len(listed) != participants:
        raise RuntimeError(f"listed {len(listed)} of {participants}")
    return {
        "participants": participants, "files": -(-participants // file_rows), "import_s": imported_s,
        "imported_per_s": round(participants / imported_s, 1), "list_all_s": listed_s, "funnel_s": funnel_s,
        "funnel": funnel,
    }


async def many_waves(api: Api, programme: str, waves: int, countries: int) -> dict[str, Any]:
    codes = COUNTRIES[:countries]
    started = time.perf_counter()
    for i in range(waves):
        country = codes[i % len(codes)]
        await api.call("POST", f"/v1/programmes/{programme}/waves", {
            "name": f"{country} wave {i // len(codes) + 1}", "region": "World", "country": country,
            "committee": f"committee-{country.lower()}", "starts_on": "2026-01-05", "ends_on": "2099-06-30",
            "target_pairs": 30,
        })  # fmt: skip
    opened_s = timed(started)
    started = time.perf_counter()
    listed = await api.all_pages("/v1/waves", programme_id=programme)
    listed_s = timed(started)
    started = time.perf_counter()
    one_country = await api.all_pages("/v1/waves", programme_id=programme, country=codes[0])
    country_s = timed(started)
    if len(listed) != waves or len({w["country"] for w in listed}) != len(codes):
        raise RuntimeError(f"listed {len(listed)} waves in {len({w['country'] for w in listed})} countries")
    return {
        "waves": waves, "countries": len(codes), "open_s": opened_s, "opened_per_s": round(waves / opened_s, 1),
        "list_all_s": listed_s, "one_country_waves": len(one_country), "list_one_country_s": country_s,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    stack = await asyncio.to_thread(start_stack)
    data_dir = Path(tempfile.mkdtemp(prefix="binome-limits-"))
    pool = await create_pool(stack.database_url, min_size=2, max_size=8)
    schema = f"lim{uuid.uuid4().hex[:8]}"
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, SERVICE.migrations)
            await migrate_vault(conn, f"{schema}_vault")
        # The per-client rate limit is lifted: this measures what the service holds, not the limiter.
        settings = Settings(data_dir=data_dir, rate_limit="1000000/minute", dev_mode=True)  # keys in the temp data dir
        vault = KeyVault(pool, f"{schema}_vault", MasterKeys.from_settings(settings))
        store = EventStore(pool, schema, topic_prefix=f"{schema}.", service="enrollment", personal=PersonalData(vault))
        ctx = ServiceContext("enrollment", pool, store, "", settings, TokenVerifier.from_settings(settings), vault)
        transport = httpx.ASGITransport(app=SERVICE.build_app(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://enrollment", timeout=600) as client:
            api = Api(client, data_dir)
            programmes = [(await api.call("POST", "/v1/programmes", {"name": f"Capacity {i}", "mode": "reverse"}))
                          ["programme_id"] for i in (1, 2)]
            wave = await one_wave(api, programmes[0], args.participants, args.file_rows)
            spread = await many_waves(api, programmes[1], args.waves, args.countries)
        return {"database": stack.database_name, "participants_per_wave": wave, "waves_per_programme": spread}
    finally:
        for name in (schema, f"{schema}_vault"):
            await pool.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await pool.close()
        stack.close()


def print_report(report: dict[str, Any]) -> None:
    wave, spread = report["participants_per_wave"], report["waves_per_programme"]
    table = Table(title="What one programme holds (enrollment's HTTP API, real PostgreSQL)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in (
        ("participants imported into one wave", f"{wave['participants']:,} in {wave['files']} files"),
        ("import time / rate", f"{wave['import_s']} s / {wave['imported_per_s']:,} per s"),
        ("list every participant of the wave", f"{wave['list_all_s']} s"),
        ("the wave's funnel", f"{wave['funnel_s']} s"),
        ("waves opened in one programme", f"{spread['waves']:,} in {spread['countries']} countries"),
        ("open time / rate", f"{spread['open_s']} s / {spread['opened_per_s']} per s"),
        ("list every wave of the programme", f"{spread['list_all_s']} s"),
        ("list one country's waves", f"{spread['one_country_waves']} in {spread['list_one_country_s']} s"),
    ):
        table.add_row(name, value)
    Console().print(table)
    print(f"database: {report['database']}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--file-rows", type=int, default=2_000, help="rows per import file (5 MB body limit)")
    parser.add_argument("--waves", type=int, default=300)
    parser.add_argument("--countries", type=int, default=60, choices=range(1, len(COUNTRIES) + 1), metavar="N")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "capacity.json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    result = asyncio.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=2, default=str))
    print_report(result)
