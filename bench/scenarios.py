"""The API benchmark's scenarios, their targets and the table of results (bench/run.py runs them)."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field

from bench.data import COMMON_SEARCH_TERMS, RARE_SEARCH_TERMS

LATENCY_TARGETS_MS = {
    "list": 50.0,
    "filtered": 50.0,
    "search": 50.0,
    "search-common": 50.0,
    "search-rare": 50.0,
    "detail": 50.0,
    "create": 100.0,
}
# The portal's pages have no latency target under this load: theirs is 50 ms of server time, which
# bench/portal_bench.py measures (`make bench-portal`); here they show what they cost next to the API.
INTAKE_TARGET_ALERTS_PER_S = 500.0
CEILING_SHARE = 0.5


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    script: str
    title: str
    token: bool = True  # sends the agent's knox token
    api: bool = True  # held to `share` of its minimal DRF view
    session: bool = False  # sends the bench requester's session cookie (the portal's pages)
    # The minimal DRF view doing the same thing, measured in the same rounds, and the share of it that is the target
    # (issue 19: detail 0.9 of a RetrieveAPIView, create 0.5 of a CreateAPIView, search 0.8 of the list view).
    ceiling: str = "drf"
    share: float = CEILING_SHARE
    terms: tuple[str, ...] = ()  # search terms of its own (BENCH_TERMS), else every term of bench/data.py


SCENARIOS = [
    Scenario("list", "/api/v1/tickets/", "get.lua", "ticket list (default page)"),
    Scenario(
        "filtered",
        "/api/v1/tickets/?status=open&priority=high&ordering=-created_at",
        "get.lua",
        "filtered list (status, priority, newest first)",
    ),
    Scenario("search", "/api/v1/tickets/", "search.lua", "full-text search", share=0.8),
    Scenario(
        "search-common",
        "/api/v1/tickets/",
        "search.lua",
        "full-text search, common terms",
        share=0.8,
        terms=COMMON_SEARCH_TERMS,
    ),
    Scenario(
        "search-rare",
        "/api/v1/tickets/",
        "search.lua",
        "full-text search, rare terms",
        share=0.8,
        terms=RARE_SEARCH_TERMS,
    ),
    Scenario("detail", "/api/v1/tickets/", "detail.lua", "ticket detail (random id)", ceiling="drf-detail", share=0.9),
    Scenario("create", "/api/v1/tickets/", "create.lua", "ticket create (POST)", ceiling="drf-create"),
    Scenario("transition", "/api/v1/incidents/", "transition.lua", "incident transition (POST)"),
    Scenario("intake", "/api/v1/alerts/alertmanager/", "intake.lua", "Alertmanager intake", token=False),
    Scenario(
        "portal-list",
        "/portal/?state=all",
        "get.lua",
        "portal: my tickets",
        token=False,
        api=False,
        session=True,
    ),
    Scenario(
        "portal-ticket",
        "/portal/",
        "portal.lua",
        "portal: a ticket",
        token=False,
        api=False,
        session=True,
    ),
    Scenario("health", "/health/", "get.lua", "/health/", token=False, api=False),
    Scenario("django", "/bench/django/tickets/", "get.lua", "ceiling: bare Django view", token=False, api=False),
    Scenario("drf", "/bench/drf/tickets/", "get.lua", "ceiling: minimal DRF list view", token=False, api=False),
    Scenario(
        "drf-detail",
        "/bench/drf/ticket/",
        "detail.lua",
        "ceiling: minimal DRF detail view",
        api=False,
        ceiling="drf-detail",
    ),
    Scenario(
        "drf-detail-anon",
        "/bench/drf/anonymous-ticket/",
        "detail.lua",
        "reference: minimal DRF detail view, no authentication",
        token=False,
        api=False,
        ceiling="drf-detail",
    ),
    Scenario(
        "drf-create",
        "/bench/drf/create/",
        "create.lua",
        "ceiling: minimal DRF create view",
        api=False,
        ceiling="drf-create",
    ),
]
NAMES = [s.name for s in SCENARIOS]


@dataclass
class Outcome:
    scenario: Scenario
    runs: list[dict[str, float]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(run[key] for run in self.runs)

    def errors(self) -> int:
        keys = ("non2xx", "connect_errors", "read_errors", "write_errors", "timeouts")
        return int(sum(run[key] for run in self.runs for key in keys))


def table(outcomes: list[Outcome], args: argparse.Namespace) -> tuple[str, list[str]]:
    """The results table (Markdown) and the targets that were missed."""
    by_name = {o.scenario.name: o for o in outcomes}
    lines = [
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | vs its minimal DRF view | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    missed: list[str] = []
    for outcome in outcomes:
        s = outcome.scenario
        rps, p95 = outcome.median("rps"), outcome.median("p95_ms")
        # The median of each round's ratio: both sides of a ratio were measured minutes apart at most.
        share, ceiling = None, by_name.get(s.ceiling)
        if ceiling is not None:
            share = statistics.median(a["rps"] / b["rps"] for a, b in zip(outcome.runs, ceiling.runs, strict=True))
        ratio = "-" if share is None else f"{share:.2f}" + ("" if s.ceiling == "drf" else f" of {s.ceiling}")
        checks = []
        if s.name in LATENCY_TARGETS_MS:
            checks.append((f"p95 ≤ {LATENCY_TARGETS_MS[s.name]:g} ms", p95 <= LATENCY_TARGETS_MS[s.name]))
        if s.api and share is not None:
            checks.append((f"≥ {s.share:g} of {s.ceiling}", share >= s.share))
        if s.name == "intake":
            alerts = rps * args.alerts_per_delivery
            checks.append(
                (f"{alerts:.0f} alerts/s ≥ {INTAKE_TARGET_ALERTS_PER_S:g}", alerts >= INTAKE_TARGET_ALERTS_PER_S)
            )
        if outcome.errors():
            checks.append(("no errors", False))
        verdict = ", ".join(f"{text} {'ok' if ok else 'MISSED'}" for text, ok in checks) or "-"
        missed += [f"{s.name}: {text}" for text, ok in checks if not ok]
        lines.append(
            f"| {s.title} | {rps:.0f} | {outcome.median('p50_ms'):.1f} | {p95:.1f} | {outcome.median('p99_ms'):.1f} "
            f"| {outcome.errors()} | {ratio} | {verdict} |"
        )
    return "\n".join(lines), missed
