"""``binome demo``: a multinational rollout driven through the public HTTP
APIs of a running platform, over simulated weeks.

The story, week by week (each week ends by moving the platform's dev clock
seven days forward):

* a wave's start week: its regional committee opens it, imports its people
  (one JSON file through the import endpoint), qualifies the mentors, the
  mentees answer the needs questionnaire, the committee closes enrolment and
  runs matching; people accept their proposal (or HR confirms it); mentees
  answer the digital-maturity pre-questionnaire;
* every week: pairs schedule their sessions at their own cadence; some are
  cancelled (a few late), the others are held or missed once their time has
  passed; both members answer most session-feedback surveys; members check in
  every few weeks; a few pairs fade away (and show in "pairs at risk");
* mid-wave: a few pairs are dissolved, a few people drop out (matching ends
  their pairs on enrollment's event), and the committee re-runs matching to
  re-pair who is free;
* a wave's last week: HR completes its pairs (fading ones are dissolved);
  mentees answer the post-questionnaire and the closing self-assessment with
  committed actions, mentors their questionnaire.

After every step it waits, by polling read endpoints, for the facts to reach
the services that need them. Same seed, same world and same story.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from libs.demo.api import CLOCK, Api, DemoError
from libs.demo.world import Person, Wave, World, build_world


@dataclass
class Options:
    base_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path(".binome")
    out: Path | None = None  # default: <data_dir>/demo
    organisation: str = "demo-group"
    seed: int = 7
    countries: int = 26
    mentors: int = 470
    mentees: int = 1000
    weeks: int = 16  # how long a pair meets
    second_wave_week: int = 8
    wave_size: int = 30  # a country with more mentees runs a second wave
    k_anonymity: int = 5
    concurrency: int = 8  # requests in flight; the server is one event loop, so more buys little (README)
    wait_timeout_s: float = 120.0


@dataclass
class Pair:
    pair_id: str
    wave: Wave
    mentee: Person
    mentor: Person
    formed_week: int
    cadence_days: float
    next_due: datetime
    hour: int
    fading: bool
    status: str = "formed"
    held: int = 0
    pre: dict[str, int] | None = None
    post: dict[str, int] | None = None

    @property
    def key(self) -> str:
        """Stable across runs (the server's ids are not): the two people and the week."""
        return f"{self.mentee.ref}/{self.mentor.ref}/{self.formed_week}"


@dataclass
class Session:
    session_id: str
    pair: Pair
    starts_at: datetime
    duration: int
    topics: list[str]


class Demo:
    def __init__(self, options: Options, progress: Any = None) -> None:
        self.o = options
        self.world: World = build_world(
            seed=options.seed, countries=options.countries, mentors=options.mentors, mentees=options.mentees,
            wave_size=options.wave_size, second_wave_week=options.second_wave_week,
        )
        self.api = Api(options.base_url, options.organisation, options.data_dir, concurrency=options.concurrency,
                       wait_timeout_s=options.wait_timeout_s)
        self.progress = progress
        self.counts: Counter = Counter()
        self.pairs: dict[str, Pair] = {}
        self.templates: dict[str, dict] = {}
        self.programme_id = ""
        self.themes: list[str] = []
        self.needs_questions: list[dict] = []
        self.now: datetime = datetime.min
        self.start: datetime = datetime.min
        self._tasks: dict[str, Any] = {}

    # ------------------------------------------------------------------ progress

    def _task(self, name: str, total: int | None) -> None:
        if self.progress is not None:
            self._tasks[name] = self.progress.add_task(name, total=total)

    def _advance(self, name: str, n: int = 1) -> None:
        if self.progress is not None and name in self._tasks:
            self.progress.advance(self._tasks[name], n)

    # ------------------------------------------------------------------ the run

    async def run(self) -> None:
        """The story: set up the programme, then every simulated week."""
        await self._set_up()
        total_weeks = self.o.weeks
        self._task("waves onboarded", len(self.world.waves))
        self._task("weeks simulated", total_weeks)
        self._task("sessions held", None)
        self._task("surveys answered", None)
        for week in range(total_weeks):
            await self._week(week)
            self._advance("weeks simulated")

    @property
    def out_dir(self) -> Path:
        """Where the pictures of this programme go."""
        return Path(self.o.out or Path(self.o.data_dir) / "demo") / f"programme-{self.programme_id}"

    async def _set_up(self) -> None:
        api = self.api
        clock = await api.request("GET", "/v1/dev/clock", actor=CLOCK, ok=(200, 404))
        if clock.status_code == 404:
            raise DemoError(
                f"{self.o.base_url} has no dev clock: run the demo against `binome up` in dev mode "
                "(`make up`: the embedded stack; or BINOME_DEV_MODE=true)"
            )
        self.now = self.start = datetime.fromisoformat(clock.json()["now"])
        for region, countries in self.world.regions.items():
            api.add_committee(region, countries)
        name = f"Reverse mentoring {self.start:%Y-%m} (demo, seed {self.o.seed}, {api.run_key.hex[:6]})"
        programme = await api.post(
            "/enrollment/v1/programmes",
            {"name": name, "mode": "reverse", "settings": {"languages": self.world.languages}},
        )
        self.programme_id = pid = programme["programme_id"]
        self.themes = [t["code"] for t in programme["settings"]["themes"]]
        self.needs_questions = programme["settings"]["needs_questions"]

        async def configured(path: str, body: dict) -> bool | None:
            # 404/409 until the programme's event reached that service.
            r = await api.request("PUT", path, json=body, ok=(200, 201, 404, 409))
            return True if r.status_code in (200, 201) else None

        await asyncio.gather(
            api.wait_for("the programme to reach sessions",
                         lambda: configured(f"/sessions/v1/programmes/{pid}/session-settings", {})),
            api.wait_for("the programme to reach evaluation",
                         lambda: configured(f"/evaluation/v1/programmes/{pid}/evaluation-settings",
                                            {"k_anonymity": self.o.k_anonymity})),
        )

        async def templates() -> list | None:
            found = await api.get(f"/evaluation/v1/programmes/{pid}/templates")
            return found if len(found) >= 4 else None

        for t in await api.wait_for("the programme's survey templates", templates):
            self.templates[t["kind"]] = t

    def dice(self, *key: object) -> random.Random:
        """The random draws of one decision, from the seed and what it is
        about (never from the order in which concurrent requests return)."""
        return random.Random(":".join(map(str, (self.o.seed, *key))))

    def _committee(self, wave: Wave) -> str:
        return f"committee:{wave.region}"

    async def _gather(self, coros: list) -> list:
        return list(await asyncio.gather(*coros))

    # ------------------------------------------------------------------ a week

    async def _week(self, week: int) -> None:
        starting = [w for w in self.world.waves if w.start_week == week]
        if starting:
            await self._gather([self._onboard(w, week) for w in starting])
        for wave in self.world.waves:
            if wave.start_week < week and week - wave.start_week == max(2, self.o.weeks // 2 - 1):
                await self._turbulence(wave, week)
        sessions = await self._schedule_week(week)
        await self._check_ins(week)
        await self._advance_clock(timedelta(days=7))
        held = await self._close_sessions(sessions, week)
        await self._feedback(held, week)
        ending = [w for w in self.world.waves if week - w.start_week == self.o.weeks - 1]
        if ending:
            await self._gather([self._end_wave(w) for w in ending])

    async def _advance_clock(self, delta: timedelta) -> None:
        clock = await self.api.post("/v1/dev/clock:advance", {"seconds": delta.total_seconds()}, actor=CLOCK)
        self.now = datetime.fromisoformat(clock["now"])

    # ------------------------------------------------------------------ onboarding a wave

    async def _onboard(self, wave: Wave, week: int) -> None:
        api, committee = self.api, self._committee(wave)
        starts_on = (self.now + timedelta(days=1)).date()
        opened = await api.post(f"/enrollment/v1/programmes/{self.programme_id}/waves", {
            "name": wave.name, "region": wave.region, "country": wave.country, "committee": wave.committee,
            "starts_on": starts_on.isoformat(),
            "ends_on": (starts_on + timedelta(weeks=self.o.weeks)).isoformat(),
            "target_pairs": len(wave.mentees),
        }, actor=committee)
        wave.wave_id = wid = opened["wave_id"]
        people = {p.ref: p for p in (*wave.mentees, *wave.mentors)}
        rows = [p.row for p in people.values()]
        report = await api.post(f"/enrollment/v1/waves/{wid}/participants:import", rows, actor=committee)
        if report["imported"] != len(rows) or report["errors"]:
            raise DemoError(f"import of {wave.name}: {report}")
        self.counts["enrolled"] += len(rows)
        for item in await api.pages("/enrollment/v1/participants", {"wave_id": wid}, actor=committee):
            people[item["employee_ref"]].participant_id = item["participant_id"]
        missing = [ref for ref, p in people.items() if p.participant_id is None]
        if missing:
            raise DemoError(f"{wave.name}: imported, but enrollment does not list {', '.join(missing[:5])}")
        await self._gather([self._qualify(m, committee) for m in wave.mentors])
        await self._gather([self._answer_needs(m) for m in wave.mentees])
        await api.post(f"/enrollment/v1/waves/{wid}:close-enrolment", actor=committee)
        await self._match(wave, week, confirm_share=0.4)
        self._advance("waves onboarded")

    async def _qualify(self, mentor: Person, committee: str) -> None:
        rng = self.dice(mentor.ref, "qualification")
        scores = (
            {"case_study_score": rng.randint(62, 95), "teaching_ease": rng.randint(3, 5),
             "interpersonal_skills": rng.randint(3, 5), "training_completed": True}
            if mentor.qualifies else
            {"case_study_score": rng.randint(30, 59), "teaching_ease": rng.randint(2, 4),
             "interpersonal_skills": rng.randint(2, 5), "training_completed": rng.random() < 0.5}
        )
        done = await self.api.post(f"/enrollment/v1/participants/{mentor.participant_id}/qualification", scores,
                                   actor=committee)
        if done["qualification"]["qualified"] != mentor.qualifies:
            raise DemoError(f"qualification of {mentor.ref}: expected {mentor.qualifies}, got {done['qualification']}")
        self.counts["mentors qualified" if mentor.qualifies else "mentors not qualified"] += 1

    async def _answer_needs(self, mentee: Person) -> None:
        answers, rng = [], self.dice(mentee.ref, "needs")
        for q in self.needs_questions:
            options = q["theme_options"] or self.themes
            answers.append({"question_id": q["question_id"], "themes": rng.sample(options, rng.randint(1, 2))})
        await self.api.post(f"/enrollment/v1/participants/{mentee.participant_id}/needs-answers",
                            {"answers": answers}, actor=mentee.participant_id)
        self.counts["needs answered"] += 1

    # ------------------------------------------------------------------ matching

    def _free(self, wave: Wave) -> tuple[set[str], set[str]]:
        """Mentees and qualified mentors of the wave the matching pool should hold."""
        mentees = {p.participant_id for p in wave.mentees if p.participant_id and not p.left}
        mentors = {p.participant_id for p in wave.mentors if p.participant_id and p.qualifies and not p.left}
        return mentees, mentors

    async def _match(self, wave: Wave, week: int, *, confirm_share: float) -> list[Pair]:
        api, committee, wid = self.api, self._committee(wave), wave.wave_id
        busy = {x for p in self.pairs.values() if p.status == "formed" and p.wave is wave
                for x in (p.mentee.participant_id,)}
        mentees, mentors = self._free(wave)
        mentees -= busy

        async def pool_ready() -> bool | None:
            preview = await api.post("/matching/v1/runs:preview", {"wave_ids": [wid]}, actor=committee)
            seen_mentees, seen_mentors = set(preview["inputs"]["mentee_ids"]), set(preview["inputs"]["mentor_ids"])
            return True if mentees <= seen_mentees and mentors <= seen_mentors else None

        await api.wait_for(f"matching's candidate pool of {wave.name}", pool_ready)
        run = await api.post("/matching/v1/runs", {"wave_ids": [wid]}, actor=committee)
        self.counts["matching runs"] += 1
        self.counts["unmatched after a run"] += sum(1 for u in run["unmatched"] if u["role"] == "mentee")
        by_id = {p.participant_id: p for p in (*wave.mentees, *wave.mentors)}
        formed = await self._gather([
            self._form(run_pair["pair_id"], by_id[run_pair["mentee_id"]], by_id[run_pair["mentor_id"]], wave, week,
                       confirm=self.dice(run_pair_key(by_id, run_pair), "confirm").random() < confirm_share)
            for run_pair in run["pairs"]
        ])
        await self._wait_in_sessions(formed)
        await self._pre_surveys(formed)
        return formed

    async def _form(self, pair_id: str, mentee: Person, mentor: Person, wave: Wave, week: int, *,
                    confirm: bool) -> Pair:
        if confirm:
            done = await self.api.post(f"/matching/v1/pairs/{pair_id}:confirm", actor=self._committee(wave))
            self.counts["pairs confirmed by HR"] += 1
        else:
            await self.api.post(f"/matching/v1/pairs/{pair_id}:accept", actor=mentee.participant_id)
            done = await self.api.post(f"/matching/v1/pairs/{pair_id}:accept", actor=mentor.participant_id)
            self.counts["pairs accepted by both"] += 1
        if done["status"] != "formed":
            raise DemoError(f"pair {pair_id} is {done['status']}, expected formed")
        spm = mentee.row["sessions_per_month"]
        rng = self.dice(mentee.ref, mentor.ref, week, "pair")
        pair = Pair(
            pair_id, wave, mentee, mentor, week, cadence_days=30 / spm,
            next_due=self.now + timedelta(days=rng.uniform(1, 9)), hour=rng.randint(7, 16),
            fading=rng.random() < 0.04 + 0.15 * (1 - min(mentee.engagement, mentor.engagement)),
        )
        self.pairs[pair_id] = pair
        self.counts["pairs formed"] += 1
        return pair

    async def _wait_in_sessions(self, pairs: list[Pair]) -> None:
        async def known(pair: Pair) -> bool | None:
            r = await self.api.request("GET", f"/sessions/v1/pairs/{pair.pair_id}", ok=(200, 404))
            return True if r.status_code == 200 and r.json()["status"] == "formed" else None

        await self._gather([self.api.wait_for(f"pair {p.pair_id} to reach sessions", lambda p=p: known(p))
                            for p in pairs])

    # ------------------------------------------------------------------ surveys

    async def _open_assignments(self, what: str, expected: set[tuple], kind: str) -> dict[tuple, dict]:
        """Wait until the open assignments of ``kind`` include every key of
        ``expected`` ((pair, phase, session or None, respondent)); returns them."""
        if not expected:
            return {}
        params = {"programme_id": self.programme_id, "kind": kind, "status": "open"}

        async def probe() -> dict | None:
            found = {}
            for a in await self.api.pages("/evaluation/v1/assignments", params):
                key = (a["pair_id"], a["phase"], a["session_id"], a["respondent"])
                if key in expected:
                    found[key] = a
            return found if len(found) == len(expected) else None

        return await self.api.wait_for(what, probe)

    def _answers(self, rng: random.Random, kind: str, level: float, spread: float = 0.6) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for q in self.templates[kind]["questions"]:
            k = q["kind"]
            if k == "scale":
                answers[q["question_id"]] = max(1, min(5, round(rng.gauss(level, spread))))
            elif k == "single_choice" and q["options"]:
                options = [o["code"] for o in q["options"]]
                answers[q["question_id"]] = options[0] if level >= 3.5 else rng.choice(options)
            elif k == "multiple_choice" and q["options"] and (q["required"] or rng.random() < 0.7):
                answers[q["question_id"]] = rng.sample([o["code"] for o in q["options"]], 1)
            elif k == "free_text" and (q["required"] or rng.random() < 0.2):
                answers[q["question_id"]] = "Good exchange; next time we go deeper."
        return answers

    async def _answer(self, assignment: dict, answers: dict[str, Any], actions: list[dict] | None = None) -> None:
        body: dict[str, Any] = {"answers": answers}
        if actions is not None:
            body["actions"] = actions
        await self.api.post(f"/evaluation/v1/assignments/{assignment['assignment_id']}/answers", body,
                            actor=assignment["participant_id"])
        self.counts[f"answered: {assignment['kind']}" + (f" ({assignment['phase']})" if assignment["kind"] == "digital_maturity" else "")] += 1
        self._advance("surveys answered")

    def _maturity_answers(self, rng: random.Random, level: float) -> dict[str, int]:
        return {q["question_id"]: max(1, min(5, round(rng.gauss(level, 0.5))))
                for q in self.templates["digital_maturity"]["questions"] if q["kind"] == "scale"}

    async def _pre_surveys(self, pairs: list[Pair]) -> None:
        expected = {(p.pair_id, "pre", None, "mentee") for p in pairs}
        found = await self._open_assignments("the pre-questionnaires of the new pairs", expected, "digital_maturity")
        work = []
        for p in pairs:
            rng = self.dice(p.key, "pre")
            if rng.random() < 0.04 + 0.2 * (1 - p.mentee.engagement):
                self.counts["pre-questionnaires left unanswered"] += 1
                continue
            p.pre = self._maturity_answers(rng, p.mentee.maturity)
            work.append(self._answer(found[(p.pair_id, "pre", None, "mentee")], p.pre))
        await self._gather(work)

    # ------------------------------------------------------------------ sessions

    def _active(self) -> list[Pair]:
        return sorted((p for p in self.pairs.values() if p.status == "formed"), key=lambda p: p.key)

    async def _schedule_week(self, week: int) -> list[tuple[Session, str | None]]:
        """Schedule the sessions due this week (a mentor's pairs one after the
        other, so who gets which slot does not depend on timing); cancel some.
        Returns (session, who cancelled it or None)."""
        week_end = self.now + timedelta(days=7)
        by_mentor: dict[str, list[Pair]] = {}
        for pair in self._active():
            if pair.fading and pair.held >= 2:
                continue  # this pair stopped meeting: pair health will say so
            if pair.next_due >= week_end - timedelta(hours=26):
                continue
            by_mentor.setdefault(pair.mentor.ref, []).append(pair)

        async def mentor_week(pairs: list[Pair]) -> list[Session]:
            out = []
            for pair in pairs:
                session = await self._schedule(pair, week, week_end)
                if session is not None:
                    out.append(session)
            return out

        scheduled = [s for group in await self._gather([mentor_week(g) for g in by_mentor.values()]) for s in group]
        out, cancels = [], []
        for s in scheduled:
            p, rng = s.pair, self.dice(s.pair.key, week, "cancel")
            engagement = min(p.mentee.engagement, p.mentor.engagement)
            if rng.random() < 0.06 + 0.12 * (1 - engagement) + (0.2 if p.fading else 0):
                by = rng.choice([p.mentee, p.mentor])
                cancels.append(self.api.post(f"/sessions/v1/sessions/{s.session_id}:cancel",
                                             {"reason": "A meeting clashed with this session."}, actor=by.participant_id))
                p.next_due = s.starts_at + timedelta(days=7)
                out.append((s, by.role))
            else:
                out.append((s, None))
        for done in await self._gather(cancels):
            self.counts["sessions cancelled"] += 1
            if done["cancellation"]["late"]:
                self.counts["late cancellations"] += 1
        return out

    async def _schedule(self, pair: Pair, week: int, week_end: datetime) -> Session | None:
        rng = self.dice(pair.key, week, "slot")
        short_notice = rng.random() < 0.04  # tomorrow morning: a cancellation of it is late
        earliest = self.now + (timedelta(hours=10) if short_notice else timedelta(hours=26))
        starts = max(pair.next_due, earliest).replace(hour=pair.hour, minute=0, second=0, microsecond=0)
        if starts <= earliest:
            starts += timedelta(days=1)
        duration = rng.choice((30, 45, 45, 60, 60))
        wanted = {t["theme"] for t in pair.mentee.row["themes_wanted"]}
        offered = {t["theme"] for t in pair.mentor.row["themes_offered"]}
        topics = (sorted(wanted & offered) or sorted(offered))[:2]
        fmt = rng.choice(("remote", "remote", "in_person"))
        for attempt in range(6):
            if starts + timedelta(minutes=duration) >= week_end:
                return None  # no room left this week: next week
            r = await self.api.request(
                "POST", f"/sessions/v1/pairs/{pair.pair_id}/sessions",
                json={"starts_at": starts.isoformat(), "duration_minutes": duration, "format": fmt,
                      "planned_topics": topics},
                actor=pair.mentee.participant_id, ok=(201, 409), key=f"schedule:{pair.pair_id}:{week}:{attempt}",
            )
            if r.status_code == 201:
                self.counts["sessions scheduled"] += 1
                return Session(r.json()["session_id"], pair, starts, duration, topics)
            if "time-taken" not in r.text:  # a 409 for another reason than a taken slot
                raise DemoError(f"scheduling for pair {pair.pair_id}: {r.status_code} {r.text[:300]}")
            starts += timedelta(hours=2)  # the mentor meets another mentee then
        return None

    async def _close_sessions(self, sessions: list[tuple[Session, str | None]], week: int) -> list[Session]:
        """After the week: each session not cancelled is held or missed."""
        work, held = [], []
        for s, cancelled_by in sessions:
            if cancelled_by is not None:
                continue
            p, rng = s.pair, self.dice(s.pair.key, week, "close")
            if rng.random() < 0.03 + 0.08 * (1 - min(p.mentee.engagement, p.mentor.engagement)):
                absent = rng.choice(["mentee", "mentor"])
                reporter = p.mentor if absent == "mentee" else p.mentee
                work.append(self._no_show(s, absent, reporter))
                p.next_due = s.starts_at + timedelta(days=7)
            else:
                work.append(self._held(s, rng))
                held.append(s)
        await self._gather(work)
        return held

    async def _no_show(self, s: Session, absent: str, reporter: Person) -> None:
        await self.api.post(f"/sessions/v1/sessions/{s.session_id}:mark-no-show", {"absent": absent},
                            actor=reporter.participant_id)
        self.counts["no-shows"] += 1

    async def _held(self, s: Session, rng: random.Random) -> None:
        p = s.pair
        body = {
            "actual_minutes": max(15, s.duration - rng.choice((0, 0, 5, 10))),
            "preparation_minutes": rng.choice((10, 15, 20, 30)),
            "topics_covered": s.topics,
        }
        await self.api.post(f"/sessions/v1/sessions/{s.session_id}:mark-held", body, actor=p.mentor.participant_id)
        p.held += 1
        p.next_due = s.starts_at + timedelta(days=p.cadence_days)
        self.counts["sessions held"] += 1
        self._advance("sessions held")

    async def _feedback(self, held: list[Session], week: int) -> None:
        expected = {(s.pair.pair_id, "session", s.session_id, who) for s in held for who in ("mentee", "mentor")}
        found = await self._open_assignments("the feedback surveys of the sessions held", expected, "session_feedback")
        work = []
        for s in held:
            for person in (s.pair.mentee, s.pair.mentor):
                rng = self.dice(s.pair.key, week, person.role, "feedback")
                if rng.random() > 0.25 + 0.7 * person.engagement:
                    self.counts["feedback surveys left unanswered"] += 1
                    continue
                level = 2.0 if s.pair.fading else 3.4 + person.engagement
                work.append(self._answer(found[(s.pair.pair_id, "session", s.session_id, person.role)],
                                         self._answers(rng, "session_feedback", level)))
        await self._gather(work)

    async def _check_ins(self, week: int) -> None:
        work = []
        for p in self._active():
            age = week - p.formed_week
            for person, every, at in ((p.mentee, 4, 2), (p.mentor, 8, 5)):
                if age > 0 and age % every == at % every:
                    rng = self.dice(p.key, week, person.role, "check-in")
                    mood = rng.randint(1, 2) if p.fading else rng.randint(3, 5)
                    body: dict[str, Any] = {"mood": mood}
                    if mood <= 2:
                        body["blockers"] = "We cannot find time to meet."
                    work.append(self.api.post(f"/sessions/v1/pairs/{p.pair_id}/check-ins", body,
                                              actor=person.participant_id))
        await self._gather(work)
        self.counts["check-ins"] += len(work)

    # ------------------------------------------------------------------ dissolutions, drop-outs, re-pairing

    async def _turbulence(self, wave: Wave, week: int) -> None:
        api, committee = self.api, self._committee(wave)
        active = [p for p in self._active() if p.wave is wave]
        if len(active) < 3:
            return
        rng = self.dice(wave.key, week, "turbulence")
        n_dissolve = max(1, round(0.04 * len(active)))
        n_leave = round(0.02 * len(active))
        picked = rng.sample(active, min(len(active), n_dissolve + n_leave))
        for p in picked[:n_dissolve]:
            reason = rng.choice(("no_chemistry", "availability"))
            await api.post(f"/matching/v1/pairs/{p.pair_id}:dissolve", {"reason": reason}, actor=committee)
            p.status = "dissolved"
            self.counts["pairs dissolved"] += 1
        for p in picked[n_dissolve:]:
            person = rng.choice((p.mentee, p.mentor))
            if person.left or p.status != "formed":
                continue
            await api.post(f"/enrollment/v1/participants/{person.participant_id}:withdraw",
                           {"reason": "Left the company."}, actor=committee)
            person.left = True
            self.counts["drop-outs"] += 1
            # Matching ends every open pair of the person on enrollment's event.
            for q in [q for q in self._active() if person in (q.mentee, q.mentor)]:

                async def ended(pair: Pair = q) -> bool | None:
                    found = await api.get(f"/matching/v1/pairs/{pair.pair_id}", actor=committee)
                    return True if found["status"] == "dissolved" else None

                await api.wait_for(f"matching to end pair {q.pair_id} after a drop-out", ended)
                q.status = "dissolved"
                self.counts["pairs dissolved"] += 1
        re_paired = await self._match(wave, week, confirm_share=1.0)
        self.counts["pairs re-paired"] += len(re_paired)

    # ------------------------------------------------------------------ the end of a wave

    async def _end_wave(self, wave: Wave) -> None:
        api, committee = self.api, self._committee(wave)
        completed = []
        for p in [p for p in self._active() if p.wave is wave]:
            if p.fading:  # HR ends what did not work
                await api.post(f"/matching/v1/pairs/{p.pair_id}:dissolve", {"reason": "hr_decision"}, actor=committee)
                p.status = "dissolved"
                self.counts["pairs dissolved"] += 1
            else:
                completed.append(p)
        await self._gather([api.post(f"/matching/v1/pairs/{p.pair_id}:complete", actor=committee) for p in completed])
        for p in completed:
            p.status = "completed"
        self.counts["pairs completed"] += len(completed)
        post, closing, mentor = await asyncio.gather(
            self._open_assignments(f"the post-questionnaires of {wave.name}",
                                   {(p.pair_id, "post", None, "mentee") for p in completed}, "digital_maturity"),
            self._open_assignments(f"the closing self-assessments of {wave.name}",
                                   {(p.pair_id, "closing", None, "mentee") for p in completed},
                                   "closing_self_assessment"),
            self._open_assignments(f"the mentor questionnaires of {wave.name}",
                                   {(p.pair_id, "closing", None, "mentor") for p in completed},
                                   "mentor_questionnaire"),
        )
        work = []
        for p in completed:
            rng = self.dice(p.key, "end")
            if rng.random() < 0.92 * p.mentee.engagement + 0.05:
                # What the programme did: more sessions held, more progress.
                gain = max(0.0, rng.gauss(0.2 + 0.07 * min(p.held, 8), 0.25))
                p.post = self._maturity_answers(rng, min(5.0, p.mentee.maturity + gain))
                work.append(self._answer(post[(p.pair_id, "post", None, "mentee")], p.post))
                actions = [{"description": d, "status": s} for d, s in rng.sample(ACTIONS, rng.randint(1, 3))]
                work.append(self._answer(closing[(p.pair_id, "closing", None, "mentee")],
                                         self._answers(rng, "closing_self_assessment", 4.0), actions))
            else:
                self.counts["post-questionnaires left unanswered"] += 1
            if rng.random() < 0.9 * p.mentor.engagement + 0.05:
                work.append(self._answer(mentor[(p.pair_id, "closing", None, "mentor")],
                                         self._answers(rng, "mentor_questionnaire", 4.1)))
        await self._gather(work)


ACTIONS = (
    ("Run my weekly team meeting on the collaborative platform.", "started"),
    ("Sponsor a data project in my department.", "planned"),
    ("Publish a monthly post on the internal social network.", "started"),
    ("Take the cybersecurity awareness course with my team.", "planned"),
)


def run_pair_key(by_id: dict[str, Person], run_pair: dict) -> str:
    return f"{by_id[run_pair['mentee_id']].ref}/{by_id[run_pair['mentor_id']].ref}"
