"""How fast is ListIndex.match with a million list entries? And the store around it?

    .venv/bin/python bench/list_lookup.py [--entries 1000000] [--lookups 200000] [--store]

Builds a seeded mix like a real deployment: global block/DNO lists (exact numbers and
prefixes of 4-10 digits, as imported from carrier feeds) plus per-user block/allow lists
for 20,000 subscribers, some entries expiring. Then times ``match(user, number, now)`` on a
mix of numbers that hit exactly, hit a prefix, or miss. With ``--store`` it also writes the
entries to a real SQLite file through the store, and times reopening it (loading the whole
index into memory) and the start-up integrity check.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reputation.config import StoreConfig
from reputation.lists import ListEntry, ListIndex, ListKind, ListPattern, ListScope, NewListEntry
from reputation.store import Store

NOW = 1_800_000_000.0


def number(rng: random.Random) -> str:
    return "1" + str(rng.randrange(200, 999)) + f"{rng.randrange(10**7):07d}"


def build(n: int, rng: random.Random) -> list[ListEntry]:
    out: list[ListEntry] = []
    users = 20_000
    for i in range(1, n + 1):
        r = rng.random()
        if r < 0.55:  # global exact blocks
            uid, kind, p = None, ListKind.BLOCK, ListPattern(number(rng))
        elif r < 0.60:  # global DNO
            uid, kind, p = None, ListKind.DNO, ListPattern(number(rng))
        elif r < 0.62:  # global prefixes
            uid, kind, p = (
                None,
                ListKind.BLOCK,
                ListPattern(number(rng)[: rng.randrange(7, 11)], True),
            )
        elif r < 0.95:  # per-user exact
            uid, kind, p = (
                rng.randrange(1, users),
                rng.choice([ListKind.BLOCK, ListKind.ALLOW]),
                ListPattern(number(rng)),
            )
        else:  # per-user prefixes
            uid, kind, p = (
                rng.randrange(1, users),
                ListKind.BLOCK,
                ListPattern(number(rng)[: rng.randrange(5, 9)], True),
            )
        expires = NOW + rng.choice([-10.0, 3600.0]) if rng.random() < 0.05 else None
        scope = ListScope.GLOBAL if uid is None else ListScope.USER
        out.append(ListEntry(i, scope, uid, kind, p, created=NOW, expires=expires))
    return out


def bench_index(entries: list[ListEntry], lookups: int, rng: random.Random) -> None:
    t0 = time.perf_counter()
    idx = ListIndex(entries)
    t_build = time.perf_counter() - t0
    exact = [e for e in entries if not e.pattern.prefix]
    queries = []
    for _ in range(lookups):
        r = rng.random()
        if r < 0.3:
            e = rng.choice(exact)
            queries.append((e.user_id, e.pattern.digits))
        else:
            queries.append((rng.randrange(1, 20_000) if rng.random() < 0.8 else None, number(rng)))
    hits = 0
    samples = []
    gc.disable()
    try:
        # CPU time of the whole run: robust to other processes competing for the cores
        c0 = time.process_time()
        for uid, num in queries:
            idx.match(uid, num, NOW)
        cpu_mean = (time.process_time() - c0) / len(queries) * 1e6
        batch = 1000
        for i in range(0, lookups, batch):
            chunk = queries[i : i + batch]
            t0 = time.perf_counter_ns()
            for uid, num in chunk:
                if idx.match(uid, num, NOW) is not None:
                    hits += 1
            samples.append((time.perf_counter_ns() - t0) / len(chunk) / 1000)
        worst = 0.0
        for uid, num in queries[:20_000]:
            t0 = time.perf_counter_ns()
            idx.match(uid, num, NOW)
            worst = max(worst, (time.perf_counter_ns() - t0) / 1000)
        singles = []
        for uid, num in queries[:20_000]:
            t0 = time.perf_counter_ns()
            idx.match(uid, num, NOW)
            singles.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    singles.sort()
    print(f"entries: {len(idx):,}  build: {t_build:.2f} s")
    print(f"lookups: {lookups:,}  hits: {hits:,}")
    print(
        f"mean per lookup: {statistics.mean(samples):.2f} us wall (batches of 1000),"
        f" {cpu_mean:.2f} us CPU"
    )
    p50, p99 = singles[len(singles) // 2], singles[int(len(singles) * 0.99)]
    print(
        f"single lookups: p50 {p50:.2f} us  p99 {p99:.2f} us  max {worst:.1f} us"
        " (timer overhead included)"
    )


async def bench_store(entries: list[ListEntry]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "reputation.sqlite3"
        s = Store.open(path, StoreConfig())
        uids = sorted({e.user_id for e in entries if e.user_id is not None})
        t0 = time.perf_counter()
        for uid in uids:
            # create users with the ids the entries use (ids are assigned in order)
            r = await s.add_user(f"u{uid}", "user")
            assert isinstance(r, tuple) and r[0].id == uid - (uids[0] - 1)
        t_users = time.perf_counter() - t0
        shift = uids[0] - 1
        news = [
            NewListEntry(
                e.scope,
                None if e.user_id is None else e.user_id - shift,
                e.kind,
                e.pattern,
                "",
                expires=e.expires,
            )
            for e in entries
        ]
        t0 = time.perf_counter()
        for i in range(0, len(news), 50_000):
            await s.add_entries(news[i : i + 50_000], now=NOW)
        t_insert = time.perf_counter() - t0
        s.close()
        size = path.stat().st_size
        for check in ("none", "quick"):
            t0 = time.perf_counter()
            s = Store.open(path, StoreConfig(check_on_open=check))
            t_open = time.perf_counter() - t0
            n = len(s.lists)
            s.close()
            print(f"store reopen with check_on_open={check}: {t_open:.2f} s for {n:,} entries")
        print(
            f"store: {len(uids):,} users in {t_users:.1f} s, {len(news):,} entries inserted"
            f" in {t_insert:.1f} s, file {size / 1e6:.0f} MB"
        )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=200_000)
    ap.add_argument("--store", action="store_true", help="also time the SQLite store")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    entries = build(a.entries, rng)
    bench_index(entries, a.lookups, rng)
    if a.store:
        asyncio.run(bench_store(entries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
