"""Delivery benchmark: N due reminders through the real OutboxDeliverer at the default limits.

A fast fake Telegram (RecordingSession with a small latency) records every call; afterwards we
check what the limits promise: the achieved rate against the configured one (target ≥ 0.95),
no chat getting two messages within `per_chat_interval` (violations 0), the most messages in
any one-second window (≤ the global rate), every reminder sent once (duplicates 0, lost 0), and
the process's peak RSS. Reminders go to count/5 chats, five each, interleaved, so the per-chat
limit is exercised too. Quiet hours are switched off (the bench may run at night).

    python bench/reminders.py                 # 10,000 reminders: ~333 s at 30/s
    python bench/reminders.py --count 600     # quick run while developing
    python bench/reminders.py --database-url postgresql+asyncpg://postgres@127.0.0.1/bench

The last line is one JSON object with the figures and targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

from aiogram.methods import SendMessage
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from bot.delivery import OutboxDeliverer
from bot.factory import create_bot
from bot.offline import RecordingSession
from infra.db import create_engine, create_sessionmaker
from infra.i18n import create_i18n
from infra.migrate import upgrade
from infra.ratelimit import RateLimiter, install
from infra.settings import DatabaseSettings, DeliverySettings, load_settings
from models import OutboxMessage, utcnow
from models.outbox import PENDING, SENT
from services.clock import Clock

PER_CHAT = 5
CHAT_BASE = 80_000_000


class StampedSession(RecordingSession):
    """Stamps each call when the bot issues it (before the simulated network latency), which is
    what the limiter controls; the base class stamps it after the latency."""

    async def make_request(self, bot, method, timeout=None):
        issued = time.monotonic()
        try:
            return await super().make_request(bot, method, timeout)
        finally:
            self.calls[-1].at = issued


async def seed(sessionmaker, count: int) -> None:
    chats = max(1, count // PER_CHAT)
    now = utcnow() - timedelta(seconds=1)
    rows = []
    for i in range(count):
        chat = CHAT_BASE + i % chats  # round-robin: one chat's reminders are spread out
        rows.append(
            {
                "kind": "renewal_due",
                "user_id": None,
                "chat_id": chat,
                "due_at": now,
                "urgent": False,
                "payload": {"number": f"B-{i}", "service": "Bench", "due": "01.01.2027"},
                "state": PENDING,
                "attempts": 0,
            }
        )
    async with sessionmaker.begin() as session:
        for start in range(0, count, 1000):
            await session.execute(insert(OutboxMessage), rows[start : start + 1000])


def analyse(calls, rate: float, per_chat: float, count: int) -> dict[str, object]:
    sends = [c for c in calls if isinstance(c.method, SendMessage) and c.ok]
    times = sorted(c.at for c in sends)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    achieved = (len(times) - 1) / span if span > 0 else 0.0
    # most sends in any one-second window (half-open), sliding over sorted times
    worst, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + 1.0 - 1e-6:
            j += 1
        worst = max(worst, j - i)
    by_chat: dict[int, list[float]] = defaultdict(list)
    for c in sends:
        by_chat[c.method.chat_id].append(c.at)
    gaps = []
    violations = 0
    for ts in by_chat.values():
        ts.sort()
        for a, b in itertools.pairwise(ts):
            gaps.append(b - a)
            violations += b - a < per_chat - 1e-3
    markers = Counter(c.method.text.split("(")[-1].split(")")[0] for c in sends)
    duplicates = sum(n - 1 for n in markers.values() if n > 1)
    lost = count - len(markers)
    return {
        "sent_calls": len(sends),
        "seconds": round(span, 2),
        "achieved_rate": round(achieved, 3),
        "max_in_any_second": worst,
        "per_chat_violations": violations,
        "per_chat_gap_median_s": round(statistics.median(gaps), 3) if gaps else None,
        "per_chat_gap_min_s": round(min(gaps), 3) if gaps else None,
        "duplicates": duplicates,
        "lost": lost,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.005, help="fake Telegram latency, seconds")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
    await upgrade(url)
    settings = load_settings(
        database=DatabaseSettings(DATABASE_URL=url),
        delivery=DeliverySettings(QUIET_HOURS_START="00:00", QUIET_HOURS_END="00:00"),
    )
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        await session.execute(OutboxMessage.__table__.delete())
    await seed(sessionmaker, args.count)

    tg = StampedSession(latency=args.latency)
    bot = create_bot(settings, session=tg)
    # As in production (bot/scheduler.py): one limiter on the bot's session for every call.
    install(bot, RateLimiter(settings.delivery.global_rate, settings.delivery.per_chat_interval))
    deliverer = OutboxDeliverer(bot, sessionmaker, create_i18n("uk"), Clock(), settings)
    rate = settings.delivery.global_rate
    per_chat = settings.delivery.per_chat_interval
    print(
        f"{args.count} reminders to {max(1, args.count // PER_CHAT)} chats on "
        f"{engine.dialect.name}, limits {rate:g}/s and 1 per {per_chat:g} s per chat, "
        f"fake latency {args.latency * 1000:.0f} ms; expect ~{args.count / rate:.0f} s",
        flush=True,
    )
    started = time.monotonic()
    sent = 0
    while True:
        sent += await deliverer.deliver_due()
        async with sessionmaker() as session:
            left = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == PENDING)
            )
        if not left:
            break
        await asyncio.sleep(0.05)  # only deferred rows are left: their time comes soon
        if time.monotonic() - started > args.count / rate * 3 + 60:
            break
    wall = time.monotonic() - started
    async with sessionmaker() as session:
        states = dict(
            (
                await session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
            ).all()
        )
    await engine.dispose()
    tmp.cleanup()

    figures = analyse(tg.calls, rate, per_chat, args.count)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = figures["achieved_rate"] / rate
    f = figures
    print(
        f"achieved {f['achieved_rate']:.2f}/s of {rate:g}/s (ratio {ratio:.3f}, target ≥ 0.95) "
        f"in {f['seconds']:.1f} s (wall {wall:.1f} s); most in any second {f['max_in_any_second']}; "
        f"per-chat violations {f['per_chat_violations']} (median gap {f['per_chat_gap_median_s']} s, "
        f"min {f['per_chat_gap_min_s']} s); duplicates {f['duplicates']}; lost {f['lost']}; "
        f"states {states}; peak RSS {rss_mb:.0f} MB"
    )
    result = {
        "bench": "reminders",
        "backend": "postgresql" if url.startswith("postgresql") else "sqlite",
        "count": args.count,
        "configured_rate": rate,
        "per_chat_interval": per_chat,
        "latency_ms": args.latency * 1000,
        **figures,
        "rate_ratio": round(ratio, 3),
        "sent_rows": states.get(SENT, 0),
        "wall_seconds": round(wall, 1),
        "rss_mb": round(rss_mb, 1),
        "targets": {
            "rate_ratio": ">= 0.95",
            "per_chat_violations": 0,
            "max_in_any_second": f"<= {rate:g}",
            "duplicates": 0,
            "lost": 0,
        },
        "ok": ratio >= 0.95
        and figures["per_chat_violations"] == 0
        and figures["max_in_any_second"] <= rate
        and figures["duplicates"] == 0
        and figures["lost"] == 0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
