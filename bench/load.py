"""Load benchmark: real HTTP into `hromada-bot webhook` while a reminder backlog drains.

One instance first, then three behind HAProxy (tools/cluster.py), on a fresh PostgreSQL database
and Redis, with the Bot API stand-in (tools/telegram_standin.py) on loopback enforcing Telegram's
limits (more than 30 messages in a second, or two to one chat within 1 s: 429 with retry_after).

For each offered load (default 10, 20 and 40 updates/s) residents arrive open-loop (a Poisson
process of rate load / 15) and each drives first contact and the whole intake form — /start,
language, consent, /new, search, hromada, settlement, service, a marker, done, description, no
files, for myself, contact, confirm: 15 updates — waiting for each reply as a person does, then
thinking 1-2 s (--think). Meanwhile the outbox holds a backlog of --reminders (10,000) due
reminders for distinct chats, topped up before each load, which the bot drains with whatever
budget the replies leave.

Each load runs --ramp seconds (default: about one form's duration, so that the number of residents
in the middle of the form reaches its steady state) and then --duration seconds (30) that are
measured; arrivals stop then, and the forms under way finish. Figures over the measured window:
- reply latency p50/p95/p99: from an update's POST to the first accepted API call in that chat
  (an edit or a message: what the person sees first);
- callback-answer p95: from a button press's POST to its answerCallbackQuery;
- 429s received, the most message calls in any second, per-chat spacing violations;
- reminders sent per second, and what the replies took of the budget;
- lost updates (over every update posted in the load, not only the window): a POST not answered
  200, an update whose reply (or press answer) never came within --reply-timeout, or a confirmed
  form whose case row does not exist at the end;
- pool: the bot's /metrics when it has one (any metric whose name mentions pool), else samples of
  pg_stat_activity for the run's database (connections in use against the pools' 20 per process);
- RSS (current and peak) of each bot process.

Targets (default budget of 30 messages/s), per topology: at 20 updates/s reply p95 <= 300 ms,
callback-answer p95 <= 100 ms, the budget used (replies + reminders >= 90 % of 30/s), zero 429s
and zero lost updates; at 40 updates/s (over the budget) replies still go ahead of the reminders
(reply p95 <= 1 s, not minutes behind the backlog), zero 429s and nothing lost.

Usage:
    python bench/load.py                                   # full run, about 10 minutes
    python bench/load.py --duration 8 --ramp 0 --reminders 2000 --instances 1   # quick look

The last line printed is one JSON object: the one-instance 20 updates/s figures at the top level
(`reply_p95_ms`, `callback_p95_ms`, `responses_429`, `lost_updates`), every load nested under
`loads`, the three-instance run under `three_instances`, the targets, and `meets_target` (true
only when every target holds in every topology run).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from models import Case, OutboxMessage, Resident, User  # noqa: E402
from models.outbox import PENDING  # noqa: E402
from tests.pgtools import PG_ADMIN_DSN  # noqa: E402
from tools.cluster import Cluster, FlowAbandoned, NotShown, Person, Step, file_request  # noqa: E402
from tools.telegram_standin import max_in_any_second, per_chat_violations  # noqa: E402

UPDATES_PER_FLOW = 15
BUDGET = 30.0
POOL_PER_PROCESS = 20  # infra/db.py: pool_size 10 + max_overflow 10
TARGETS = {
    "20": {
        "reply_p95_ms": 300,
        "callback_p95_ms": 100,
        "responses_429": 0,
        "lost_updates": 0,
        "budget_used_min_ratio": 0.9,
    },
    "40": {"reply_p95_ms": 1000, "responses_429": 0, "lost_updates": 0},
}
RESIDENT_IDS = itertools.count(10_000_000)
REMINDER_CHATS = itertools.count(50_000_000)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[k], 1)


@dataclass
class Phase:
    load: float
    started: float
    window: tuple[float, float]
    steps: list[Step] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)  # telegram ids whose confirm was answered
    abandoned: int = 0
    pool_samples: list[dict[str, int]] = field(default_factory=list)


async def sample_pool(database: str, stop: asyncio.Event, out: list[dict[str, int]]) -> None:
    """Connections to the run's database by state, twice a second."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT coalesce(state, '?') AS state, count(*) AS n FROM pg_stat_activity "
                "WHERE datname = $1 GROUP BY 1",
                database,
            )
            out.append({r["state"]: r["n"] for r in rows})
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
    finally:
        await conn.close()


async def metrics_about_pool(cluster: Cluster) -> dict[str, float] | None:
    """Pool and limiter figures from the bot's /metrics, summed over instances; None when the
    bot has no /metrics."""
    assert cluster.http is not None
    found: dict[str, float] = {}
    any_metrics = False
    for bot in cluster.processes:
        try:
            async with cluster.http.get(f"http://127.0.0.1:{bot.port}/metrics") as response:
                if response.status != 200:
                    continue
                text = await response.text()
        except (aiohttp.ClientError, OSError):
            continue
        any_metrics = True
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            if "pool" in name or "limiter" in name:
                try:
                    found[name] = found.get(name, 0.0) + float(value)
                except ValueError:
                    continue
    return found if any_metrics else None


async def top_up_reminders(cluster: Cluster, backlog: int) -> int:
    assert cluster.sessionmaker is not None
    async with cluster.sessionmaker() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.state == PENDING, OutboxMessage.kind == "renewal_due")
        )
    missing = max(0, backlog - (pending or 0))
    if missing:
        await cluster.add_due_reminders([next(REMINDER_CHATS) for _ in range(missing)], tag="L")
    return missing


async def run_load(
    cluster: Cluster,
    routes: list[Any],
    load: float,
    *,
    ramp: float,
    duration: float,
    think: tuple[float, float],
    reply_timeout: float,
    backlog: int,
    seed: int,
) -> dict[str, Any]:
    await top_up_reminders(cluster, backlog)
    rng = random.Random(seed)
    start = time.monotonic()
    phase = Phase(load, start, (start + ramp, start + ramp + duration))
    first_call = len(cluster.standin.calls)
    cluster.standin.loop_lag_max = 0.0
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_pool(cluster.database_name, stop_sampling, phase.pool_samples))

    async def resident(i: int) -> None:
        person = cluster.person(next(RESIDENT_IDS), timeout=reply_timeout)
        phase.people.append(person)
        try:
            steps = await file_request(
                person, routes[i % len(routes)], think=lambda: rng.uniform(*think), onboard=True
            )
            phase.confirmed.append(person.user_id)
            del steps
        except (FlowAbandoned, NotShown):
            phase.abandoned += 1

    tasks: list[asyncio.Task[None]] = []
    rate = load / UPDATES_PER_FLOW  # residents per second
    end = start + ramp + duration
    i = 0
    next_at = start
    while True:
        next_at += rng.expovariate(rate)
        if next_at >= end:
            break
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        tasks.append(asyncio.create_task(resident(i)))
        i += 1
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    metrics = await metrics_about_pool(cluster)
    rss = {f"bot{b.index}": b.rss_kb() for b in cluster.processes}
    await asyncio.gather(*tasks)
    stop_sampling.set()
    await sampler
    await cluster.standin.synced()
    finished = time.monotonic()

    lo, hi = phase.window
    steps = [s for p in phase.people for s in p.steps]
    in_window = [s for s in steps if lo <= s.posted < hi]
    replies = [s.reply_ms for s in in_window if s.expects_reply and s.reply_ms is not None]
    answers = [s.answer_ms for s in in_window if s.kind == "callback" and s.answer_ms is not None]
    lost_steps = sum(1 for s in steps if s.lost)
    # Where the slow replies are: the form's steps in order (1 = /start ... 15 = confirm).
    by_step: dict[int, list[float]] = {}
    for p in phase.people:
        for number, s in enumerate(p.steps, 1):
            if lo <= s.posted < hi and s.expects_reply and s.reply_ms is not None:
                by_step.setdefault(number, []).append(s.reply_ms)
    # Confirmed forms whose case row is missing (the reply came, the case did not).
    assert cluster.sessionmaker is not None
    async with cluster.sessionmaker() as session:
        with_case = set(
            (
                await session.scalars(
                    select(User.telegram_id)
                    .join(Resident, Resident.user_id == User.id)
                    .join(Case, Case.resident_id == Resident.id)
                    .where(User.telegram_id.in_(phase.confirmed or [0]))
                )
            ).all()
        )
    missing_cases = len(set(phase.confirmed) - with_case)

    calls = cluster.standin.calls[first_call:]
    window_calls = [c for c in calls if lo <= c.at < hi]
    resident_chats = {p.user_id for p in phase.people}
    reminder_sends = sum(
        1 for c in window_calls if c.ok and c.creates_message and c.chat_id not in resident_chats
    )
    reply_sends = sum(1 for c in window_calls if c.ok and c.creates_message and c.chat_id in resident_chats)
    sends = [c for c in calls if c.creates_message]
    in_use = [sum(n for state, n in s.items() if state != "idle") for s in phase.pool_samples]
    total = [sum(s.values()) for s in phase.pool_samples]
    pool_limit = POOL_PER_PROCESS * len(cluster.processes)
    result = {
        "offered_updates_per_s": load,
        "achieved_updates_per_s": round(len(in_window) / duration, 1),
        "residents": len(phase.people),
        "residents_filed": len(with_case),
        "updates": len(steps),
        "reply_p50_ms": pct(replies, 50),
        "reply_p95_ms": pct(replies, 95),
        "reply_p99_ms": pct(replies, 99),
        "reply_p95_ms_by_step": {n: pct(v, 95) for n, v in sorted(by_step.items())},
        "callback_p50_ms": pct(answers, 50),
        "callback_p95_ms": pct(answers, 95),
        "responses_429": cluster.standin.responses_429(calls),
        "responses_429_by_limit": dict(Counter(c.limit for c in calls if c.limited)),
        "lost_updates": lost_steps + missing_cases,
        "lost_no_reply": lost_steps,
        "lost_confirmed_without_case": missing_cases,
        "reminders_per_s": round(reminder_sends / duration, 1),
        "reply_messages_per_s": round(reply_sends / duration, 1),
        "budget_used_ratio": round((reminder_sends + reply_sends) / duration / BUDGET, 3),
        "max_messages_in_any_second": max_in_any_second(sends),
        "per_chat_violations": per_chat_violations(sends, tolerance=cluster.standin.tolerance),
        # The stand-in stamps arrivals on this process's event loop: a lag near or above the
        # bot's margin (20 ms) can make correctly spaced sends look bunched.
        "standin_loop_lag_max_ms": round(cluster.standin.loop_lag_max * 1000, 1),
        "pool": {
            "source": "metrics" if metrics else "pg_stat_activity",
            "metrics": metrics,
            "db_connections_max": max(total, default=0),
            "db_busy_max": max(in_use, default=0),
            "db_busy_mean": round(statistics.fmean(in_use), 1) if in_use else 0,
            "samples_at_pool_limit_pct": round(
                100 * sum(1 for n in total if n >= pool_limit) / max(1, len(total)), 1
            ),
            "pool_limit": pool_limit,
        },
        "rss_mb": {name: {"now": round(a / 1024), "peak": round(b / 1024)} for name, (a, b) in rss.items()},
        "seconds": round(finished - start, 1),
    }
    return result


def check(loads: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Each target of one topology run: True when it holds (missing load: does not hold)."""
    out: dict[str, bool] = {}
    at20 = loads.get("20")
    if at20 is not None:
        t = TARGETS["20"]
        out["20_reply_p95"] = at20["reply_p95_ms"] is not None and at20["reply_p95_ms"] <= t["reply_p95_ms"]
        out["20_callback_p95"] = (
            at20["callback_p95_ms"] is not None and at20["callback_p95_ms"] <= t["callback_p95_ms"]
        )
        out["20_no_429"] = at20["responses_429"] == 0
        out["20_nothing_lost"] = at20["lost_updates"] == 0
        out["20_budget_used"] = at20["budget_used_ratio"] >= t["budget_used_min_ratio"]
    else:
        out["20_measured"] = False
    at40 = loads.get("40")
    if at40 is not None:
        t = TARGETS["40"]
        out["40_replies_ahead"] = (
            at40["reply_p95_ms"] is not None and at40["reply_p95_ms"] <= t["reply_p95_ms"]
        )
        out["40_no_429"] = at40["responses_429"] == 0
        out["40_nothing_lost"] = at40["lost_updates"] == 0
    else:
        out["40_measured"] = False
    return out


async def run_topology(instances: int, args: argparse.Namespace) -> dict[str, Any]:
    think = tuple(float(x) for x in args.think.split(","))
    ramp = args.ramp
    if ramp is None:  # about one form's duration: the residents under way reach a steady number
        ramp = UPDATES_PER_FLOW * (sum(think) / 2 + 0.3)
    t0 = time.monotonic()
    async with Cluster(instances=instances, balancer=instances > 1, poll_seconds=args.poll) as cluster:
        print(f"{instances} instance(s) up in {time.monotonic() - t0:.1f} s", flush=True)
        routes = await cluster.routes()
        loads: dict[str, dict[str, Any]] = {}
        for n, load in enumerate(args.loads):
            figures = await run_load(
                cluster,
                routes,
                load,
                ramp=ramp,
                duration=args.duration,
                think=think,  # type: ignore[arg-type]
                reply_timeout=args.reply_timeout,
                backlog=args.reminders,
                seed=args.seed + n,
            )
            key = f"{load:g}"
            loads[key] = figures
            print(
                f"[{instances}x] {key:>3}/s: achieved {figures['achieved_updates_per_s']}/s, "
                f"reply p50/p95/p99 "
                f"{figures['reply_p50_ms']}/{figures['reply_p95_ms']}/{figures['reply_p99_ms']} ms, "
                f"callback p95 {figures['callback_p95_ms']} ms, 429s {figures['responses_429']}, "
                f"lost {figures['lost_updates']}, reminders {figures['reminders_per_s']}/s, replies "
                f"{figures['reply_messages_per_s']} msg/s, max/s {figures['max_messages_in_any_second']}, "
                f"pool busy max {figures['pool']['db_busy_max']}/{figures['pool']['pool_limit']}, "
                f"stand-in lag max {figures['standin_loop_lag_max_ms']} ms, "
                f"RSS {figures['rss_mb']}",
                flush=True,
            )
        balancer = await cluster.balancer_stats()
    checks = check(loads)
    return {
        "instances": instances,
        "loads": loads,
        "checks": checks,
        "meets_target": all(checks.values()),
        "balancer": balancer or None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", default="10,20,40", help="offered updates/s, comma-separated")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per load")
    parser.add_argument("--ramp", type=float, default=None, help="seconds before measuring (default: auto)")
    parser.add_argument(
        "--instances", default="1,3", help="topologies to run: 1 = direct, 3 = behind HAProxy"
    )
    parser.add_argument("--reminders", type=int, default=10_000, help="due reminders kept in the backlog")
    parser.add_argument("--think", default="1.0,2.0", help="a person's pause between steps, min,max seconds")
    parser.add_argument(
        "--reply-timeout", type=float, default=30.0, help="after this, a reply counts as lost"
    )
    parser.add_argument("--poll", type=float, default=5.0, help="OUTBOX_POLL_SECONDS of the bot")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    args.loads = [float(x) for x in args.loads.split(",")]
    topologies = [int(x) for x in args.instances.split(",")]

    runs = [await run_topology(n, args) for n in topologies]
    first = runs[0]
    top = first["loads"].get("20", {})
    result: dict[str, Any] = {
        "reply_p95_ms": top.get("reply_p95_ms"),
        "callback_p95_ms": top.get("callback_p95_ms"),
        "responses_429": top.get("responses_429"),
        "lost_updates": top.get("lost_updates"),
        "instances": first["instances"],
        "loads": first["loads"],
        "checks": first["checks"],
    }
    for run in runs[1:]:
        name = "three_instances" if run["instances"] == 3 else f"instances_{run['instances']}"
        result[name] = run
    result.update(
        {
            "targets": TARGETS,
            "settings": {
                "duration_s": args.duration,
                "ramp_s": args.ramp,
                "reminder_backlog": args.reminders,
                "think_s": args.think,
                "budget_per_s": BUDGET,
                "updates_per_form": UPDATES_PER_FLOW,
            },
            "meets_target": all(run["meets_target"] for run in runs),
        }
    )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
