"""The portal's server time: "my tickets" and a ticket's page rendered in this process (every middleware, the view,
its queries and the template; no network, no gunicorn) against the seeded bench database, as several requesters,
the busiest among them, side by side with minimal DRF views reading the same rows in the same run (bench/views.py).
Prints p50, p95 and max per page with its query count and its p50 against the DRF view's; the target is p95 ≤ 50
ms.

    .venv/bin/python -m bench.portal_bench              # make bench-portal: the 1,000,000-ticket database
    .venv/bin/python -m bench.portal_bench --smoke      # 20,000 tickets (seeded if missing)

Exit status: 0 when every page meets the target, 1 when one misses it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.data import SEARCH_TERMS
from bench.seed import DEFAULT_URL, setup_django

TARGET_MS = 50.0
MY_TICKETS_CEILING = "ceiling: minimal DRF, my open tickets"
TICKET_CEILING = "ceiling: minimal DRF, a ticket with its comments"
ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--tickets", type=int, default=1_000_000, help="The size to seed when the database lacks it.")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--skip-seed", action="store_true", help="Use the database as it is.")
    parser.add_argument("--requesters", type=int, default=5, help="Sign in as the busiest and this many - 1 others.")
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per page (after a warm-up).")
    parser.add_argument("--smoke", action="store_true", help="20,000 tickets (database itsm_bench_smoke).")
    args = parser.parse_args(argv)
    if args.smoke:
        args.tickets, args.incidents = 20_000, 2_000
        if args.database_url == DEFAULT_URL:
            args.database_url = DEFAULT_URL + "_smoke"
    return args


def pages_of(requester: Any, rng: random.Random) -> dict[str, list[str]]:
    """The URLs each page is timed on, for one requester."""
    from itsm.models import Ticket

    ids = list(Ticket.objects.filter(requester=requester).values_list("id", flat=True))
    busiest = (
        Ticket.objects.filter(requester=requester)
        .order_by("-version", "-id")
        .values_list("id", flat=True)
        .first()  # the most written-to ticket: the longest conversation
    )
    sample = rng.sample(ids, min(len(ids), 50))
    return {
        "my tickets (open, first page)": ["/portal/"],
        "my tickets (all, page 3)": ["/portal/?state=all&page=3"],
        "my tickets (search)": [f"/portal/?state=all&q={term}" for term in SEARCH_TERMS],
        "a ticket's page (random)": [f"/portal/tickets/{pk}/" for pk in sample],
        "a ticket's page (longest)": [f"/portal/tickets/{busiest}/"],
        MY_TICKETS_CEILING: ["/bench/drf/my-tickets/"],
        TICKET_CEILING: [f"/bench/drf/my-tickets/{pk}/" for pk in sample],
    }


def ceiling_of(page: str) -> str | None:
    """The minimal DRF view a portal page is compared with (bench/views.py); None for the ceilings themselves."""
    if page.startswith("my tickets"):
        return MY_TICKETS_CEILING
    if page.startswith("a ticket's page"):
        return TICKET_CEILING
    return None


def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    rng = random.Random(11)
    users = get_user_model().objects.filter(username__startswith="requester")
    busiest = users.annotate(n=Count("requested_tickets")).order_by("-n").first()
    others = list(users.exclude(pk=getattr(busiest, "pk", None)).order_by("?")[: max(args.requesters - 1, 0)])
    timings: dict[str, list[float]] = {}
    queries: dict[str, int] = {}
    for requester in [busiest, *others]:
        browser = Client(HTTP_HOST="127.0.0.1")
        browser.force_login(requester)
        for page, urls in pages_of(requester, rng).items():
            browser.get(urls[0])  # warm-up: templates compiled, connections open
            with CaptureQueriesContext(connection) as captured:
                response = browser.get(urls[0])
            if response.status_code != 200:
                raise RuntimeError(f"{urls[0]} answered {response.status_code}")
            queries[page] = max(queries.get(page, 0), len(captured.captured_queries))
            for number in range(args.requests // max(args.requesters, 1)):
                url = urls[number % len(urls)]
                started = time.perf_counter()
                browser.get(url)
                timings.setdefault(page, []).append((time.perf_counter() - started) * 1000)
    return {
        page: {
            "requests": len(times),
            "p50": statistics.median(times),
            "p95": statistics.quantiles(times, n=20)[-1],
            "max": max(times),
            "queries": queries[page],
        }
        for page, times in timings.items()
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.skip_seed:
        command = [sys.executable, "-m", "bench.seed", "--database-url", args.database_url, "--reuse"]
        command += ["--tickets", str(args.tickets), "--incidents", str(args.incidents)]
        subprocess.run(command, check=True, cwd=ROOT)
    setup_django(args.database_url)
    from itsm.models import Ticket

    results = measure(args)
    print(f"\n{Ticket.objects.count():,} tickets; server time in-process, {args.requesters} requesters\n")
    print("| page | requests | p50 ms | p95 ms | max ms | queries | p50 vs minimal DRF | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    missed = []
    for page, row in results.items():
        ceiling = ceiling_of(page)
        if ceiling is None:
            ratio, target = "", ""
        else:
            ok = row["p95"] <= TARGET_MS
            missed += [] if ok else [page]
            ratio = f"{row['p50'] / results[ceiling]['p50']:.1f}x"
            target = f"p95 ≤ {TARGET_MS:g} ms {'ok' if ok else 'MISSED'}"
        print(
            f"| {page} | {row['requests']:.0f} | {row['p50']:.1f} | {row['p95']:.1f} | {row['max']:.1f} "
            f"| {row['queries']:.0f} | {ratio} | {target} |"
        )
    print("\ntargets missed: " + (", ".join(missed) if missed else "none"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
