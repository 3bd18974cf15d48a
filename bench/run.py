"""The API benchmark: seed (or reuse) the bench database, start gunicorn with 4 workers on it, load every scenario
with wrk, and print the medians with their ratio to the minimal DRF view measured in the same run.

    .venv/bin/python -m bench.run                       # make bench: 1,000,000 tickets, 3 runs of 20 s
    .venv/bin/python -m bench.run --smoke               # make bench-smoke: 20,000 tickets, 1 run of 3 s
    .venv/bin/python -m bench.run --topology replica-pgbouncer   # reads on a replica, the API behind PgBouncer

Every process it starts (gunicorn and its workers, wrk) is stopped before it exits, on errors and Ctrl-C too.
Exit status: 0 when every target is met, 1 when one is missed, 2 when the harness itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2

from bench.data import SEARCH_TERMS, TextPool
from bench.scenarios import NAMES, SCENARIOS, Outcome, Scenario, table
from bench.seed import BENCH_AGENT, BENCH_PASSWORD, BENCH_REQUESTER, DEFAULT_URL
from bench.server import Server, server_env
from bench.topology import Topology

LUA = Path(__file__).resolve().parent / "lua"


class Bench:
    def __init__(self, args: argparse.Namespace, server: Server) -> None:
        self.args, self.server = args, server
        self.env: dict[str, str] = {}

    def prepare(self) -> None:
        """The wrk scripts' inputs: the token, the ticket id range, the incident pool, services, search terms."""
        token = self.server.login(BENCH_AGENT, BENCH_PASSWORD)
        self.headers = ["-H", f"Authorization: Token {token}"]
        self.cookie = ["-H", f"Cookie: sessionid={self.server.session_login(BENCH_REQUESTER, BENCH_PASSWORD)}"]
        conn = psycopg2.connect(self.args.database_url)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT max(id) FROM itsm_ticket WHERE id <= %s", [self.args.tickets])
            highest = cursor.fetchone()[0]
            forget_created_tickets(cursor, highest)
            cursor.execute("SELECT id, slug FROM itsm_service ORDER BY id")
            services = cursor.fetchall()
            cursor.execute(
                "SELECT t.id FROM itsm_ticket t JOIN auth_user u ON u.id = t.requester_id "
                "WHERE u.username = %s AND t.id <= %s ORDER BY t.id",
                [BENCH_REQUESTER, highest],
            )
            portal_tickets = [str(pk) for (pk,) in cursor.fetchall()]
        conn.close()
        pool = TextPool(random.Random(7), size=400)
        self.env = {
            "BENCH_THREADS": str(self.args.threads),
            "BENCH_MAX_TICKET": str(highest),
            "BENCH_SERVICES": ",".join(str(pk) for pk, _ in services),
            "BENCH_SERVICE_SLUGS": ",".join(slug for _, slug in services),
            "BENCH_TERMS": ",".join(SEARCH_TERMS),
            "BENCH_TITLES": "|".join(pool.titles),
            "BENCH_DESCRIPTIONS": "|".join(pool.descriptions[:200]),
            "BENCH_ALERT_TOKEN": self.server.env["ITSM_ALERTMANAGER_TOKEN"],
            "BENCH_ALERT_GROUPS": str(self.args.alert_groups),
            "BENCH_ALERTS_PER_DELIVERY": str(self.args.alerts_per_delivery),
            "BENCH_PORTAL_TICKETS": ",".join(portal_tickets),
        }

    def incident_pool(self) -> str:
        """Medium and low incidents that are resolved or diagnosing, with their current status and version (the
        If-Match the script sends; read each run)."""
        with psycopg2.connect(self.args.database_url) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT id, status, version FROM itsm_incident WHERE status IN ('resolved', 'diagnosing') "
                "AND severity IN ('medium', 'low') ORDER BY id DESC LIMIT %s",
                [self.args.incident_pool],
            )
            return ",".join(f"{pk}:{status}:{version}" for pk, status, version in cursor.fetchall())

    def wrk(self, scenario: Scenario, seconds: float, workdir: Path) -> dict[str, float]:
        script = workdir / f"{scenario.name}.lua"
        script.write_text((LUA / "report.lua").read_text() + "\n" + (LUA / scenario.script).read_text())
        env = {**os.environ, **self.env, "BENCH_PATH": scenario.path}
        if scenario.terms:
            env["BENCH_TERMS"] = ",".join(scenario.terms)
        if scenario.name == "transition":
            env["BENCH_INCIDENTS"] = self.incident_pool()
        command = [
            "wrk",
            f"-t{self.args.threads}",
            f"-c{self.args.connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            *(self.headers if scenario.token else []),
            *(self.cookie if scenario.session else []),
            self.server.base + scenario.path,
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
        for line in done.stdout.splitlines():
            if line.startswith("BENCH_RESULT "):
                result: dict[str, float] = json.loads(line.removeprefix("BENCH_RESULT "))
                if done.stderr.strip():
                    print(f"    wrk: {done.stderr.strip()[:400]}", flush=True)
                return result
        raise RuntimeError(f"wrk printed no result for {scenario.name}: {done.stdout}\n{done.stderr}")

    def measure(self, scenarios: list[Scenario], workdir: Path) -> list[Outcome]:
        """Warm every scenario up, then run them in rounds: each round measures every scenario once, so the
        ceiling and the API scenarios of a round see the same machine (other load comes and goes)."""
        outcomes = [Outcome(scenario) for scenario in scenarios]
        if self.args.warmup > 0:
            for scenario in scenarios:
                self.wrk(scenario, self.args.warmup, workdir)
        for number in range(self.args.runs):
            for outcome in outcomes:
                result = self.wrk(outcome.scenario, self.args.duration, workdir)
                outcome.runs.append(result)
                errors = int(result["connect_errors"] + result["read_errors"] + result["write_errors"])
                print(
                    f"  round {number + 1} {outcome.scenario.name:<10} {result['rps']:8.1f} req/s  "
                    f"p50 {result['p50_ms']:6.1f}  p95 {result['p95_ms']:6.1f}  p99 {result['p99_ms']:6.1f} ms  "
                    f"non-2xx {int(result['non2xx'])}  socket errors {errors}  timeouts {int(result['timeouts'])}",
                    flush=True,
                )
        return outcomes

    def soak(self, seconds: float, workdir: Path) -> list[tuple[float, list[float]]]:
        """Load the ticket list for `seconds`, sampling each worker's RSS every 30 s (or 10 samples if shorter)."""
        step = min(30.0, seconds / 10)
        samples = [(0.0, self.server.rss_mb())]
        scenario = SCENARIOS[0]
        started = time.monotonic()
        while time.monotonic() - started < seconds - 1:
            self.wrk(scenario, step, workdir)
            samples.append((time.monotonic() - started, self.server.rss_mb()))
        return samples


def forget_created_tickets(cursor: Any, highest: int) -> None:
    """Delete the tickets an earlier run's create scenario added (with their comments and events), so a reused
    database starts every run as seeded: they would be the newest rows every list and search reads first."""
    # Every row that refers to those tickets first (events, comments, ticket notices, ...), found in the catalog.
    cursor.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = 'itsm_ticket'::regclass AND c.conrelid <> c.confrelid"
    )
    for referring, column in cursor.fetchall():
        cursor.execute(f'DELETE FROM {referring} WHERE "{column}" > %s', [highest])  # noqa: S608 (names from the catalog)
    cursor.execute("UPDATE itsm_ticket SET follow_up_of_id = NULL WHERE follow_up_of_id > %s", [highest])
    cursor.execute("DELETE FROM itsm_ticket WHERE id > %s", [highest])
    if cursor.rowcount:
        print(f"deleted {cursor.rowcount} tickets created by an earlier run", flush=True)
        cursor.execute("VACUUM ANALYZE itsm_ticket")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8", help="Cache; the broker is db + 1.")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="Keep a bench database seeded with the same sizes.")
    parser.add_argument("--skip-seed", action="store_true", help="Use the database as it is (no migrate, no seed).")
    parser.add_argument("--scenarios", default=",".join(NAMES), help=f"Comma-separated, of: {', '.join(NAMES)}.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=float, default=5, help="Seconds of unmeasured load before the runs.")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--incident-pool", type=int, default=2000)
    parser.add_argument("--alert-groups", type=int, default=200)
    parser.add_argument("--alerts-per-delivery", type=int, default=10)
    parser.add_argument("--soak", type=float, default=0, help="Then load the list this many seconds, sampling RSS.")
    parser.add_argument("--json", type=Path, help="Also write every run's figures here.")
    parser.add_argument(
        "--topology",
        choices=["direct", "replica-pgbouncer"],
        default="direct",
        help="direct: the API on --database-url's server. replica-pgbouncer: a primary of its own (initdb, seeded "
        "with --database-url's database name), a streaming replica for the reads that tolerate lag, and the API "
        "behind PgBouncer in transaction pooling (bench/topology.py).",
    )
    parser.add_argument(
        "--cluster-dir", type=Path, help="replica-pgbouncer: keep the primary here between runs (else a temporary one)."
    )
    parser.add_argument(
        "--smoke", action="store_true", help="20,000 tickets, 1 round of 3 s, 1 s warm-up; fails only on errors."
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.tickets, args.incidents, args.runs, args.duration, args.warmup = 20_000, 2_000, 1, 3, 1
        if args.database_url == DEFAULT_URL:
            args.database_url = DEFAULT_URL + "_smoke"
        args.reuse = True
    unknown = set(args.scenarios.split(",")) - set(NAMES)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    topology = None
    if args.topology == "replica-pgbouncer":
        topology = Topology(args.cluster_dir, database=urlsplit(args.database_url).path.strip("/"))
    try:
        return _run(args, topology, started)
    finally:
        if topology is not None:
            left = topology.stop()
            if left:
                raise RuntimeError(f"processes left behind in groups {left}")
            print("primary, replica and PgBouncer stopped")


def _run(args: argparse.Namespace, topology: Topology | None, started: float) -> int:
    if topology is not None:
        args.database_url = topology.start_primary()
    if not args.skip_seed:
        seed = [sys.executable, "-m", "bench.seed", "--database-url", args.database_url]
        seed += ["--tickets", str(args.tickets), "--incidents", str(args.incidents)] + (
            ["--reuse"] if args.reuse else []
        )
        subprocess.run(seed, check=True, cwd=Path(__file__).resolve().parent.parent)
    databases = topology.start_replica_and_bouncer() if topology is not None else {}
    if topology is not None:
        print(topology.describe(), flush=True)
    chosen = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]
    with tempfile.TemporaryDirectory(prefix="itsm-bench-") as work:
        workdir = Path(work)
        env = server_env(args.database_url, args.redis_url, args.port, args.workers, workdir / "metrics")
        server = Server({**env, **databases}, workdir / "gunicorn.log")
        try:
            server.start()
            bench = Bench(args, server)
            bench.prepare()
            rss_start = server.rss_mb()
            outcomes = bench.measure(chosen, workdir)
            rss_end = server.rss_mb()
            if topology is not None:
                args.replica_reads = topology.replica_reads()
            soak = bench.soak(args.soak, workdir) if args.soak else []
        except BaseException:
            print(f"gunicorn log (tail):\n{_tail(workdir / 'gunicorn.log')}", file=sys.stderr)
            raise
        finally:
            server.stop()
    print(f"\nall processes stopped (gunicorn group checked empty); took {time.monotonic() - started:.0f} s")
    return report(args, outcomes, rss_start, rss_end, soak)


def report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    rss_start: list[float],
    rss_end: list[float],
    soak: list[tuple[float, list[float]]],
) -> int:
    text, missed = table(outcomes, args)
    print(
        f"\n{args.tickets:,} tickets, {args.incidents:,} incidents; wrk -t{args.threads} -c{args.connections}, "
        f"{args.runs} rounds of {args.duration:g} s per scenario (medians), gunicorn {args.workers} workers, "
        f"topology {args.topology}\n"
    )
    print(text)
    print(f"\nRSS per worker (MB) at start: {_mb(rss_start)}; at end: {_mb(rss_end)}")
    if args.topology != "direct":
        print(f"ticket rows read on the replica during the run (pg_stat_user_tables): {args.replica_reads:,}")
    for seconds, sizes in soak:
        print(f"  soak {seconds:5.0f} s: {_mb(sizes)}")
    print("\ntargets missed: " + ("; ".join(missed) if missed else "none"))
    if args.json:
        data = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "scenarios": {o.scenario.name: o.runs for o in outcomes},
            "rss_mb": {"start": rss_start, "end": rss_end, "soak": soak},
            "missed": missed,
            "replica_rows_returned": getattr(args, "replica_reads", None),
        }
        args.json.write_text(json.dumps(data, indent=2))
    if args.smoke:
        # The smoke checks that the harness works: errors fail it, missed targets (3 s runs) do not.
        return 1 if any("no errors" in text for text in missed) else 0
    return 1 if missed else 0


def _mb(sizes: list[float]) -> str:
    return ", ".join(f"{size:.0f}" for size in sizes) or "-"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_main() -> Any:
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the finally blocks stop gunicorn and wrk.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return main()
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, subprocess.CalledProcessError, psycopg2.Error) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run_main())
