"""The failover runbook (docs/runbooks/backup-restore.md#failover), run as written against real clusters: the
primary dies, the standby is promoted (`SELECT pg_promote()`), the platform is pointed at it and restarted. Every
ticket the standby had replayed is there, a new ticket can be written, and the time from the primary's death to the
first successful write is measured and printed (the runbook quotes it)."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from tests.replica.conftest import api, primary_and_standby, sql, token
from tests.system.processes import eventually, http

pytestmark = pytest.mark.slow


def test_promote_the_standby_and_repoint_the_platform(tmp_path, capsys):
    (tmp_path / "clusters").mkdir()
    with primary_and_standby(tmp_path / "clusters") as clusters:
        with api(clusters, tmp_path / "before.log") as base:
            writer = token(base, "writer")
            status, _, body = http("POST", f"{base}/api/v1/tickets/", {"title": "Before the failure"}, token=writer)
            assert status == 201, body
            (lsn,) = sql(clusters.primary_port, "SELECT pg_current_wal_insert_lsn()::text")
            eventually(
                lambda: sql(clusters.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") == (True,),
                30,
                "the standby replayed the ticket",
            )
            # The primary's host dies: no clean shutdown.
            failed_at = time.monotonic()
            clusters.primary.stop(signal.SIGKILL)
            status, _, body = http("POST", f"{base}/api/v1/tickets/", {"title": "Lost"}, token=writer)
            assert status == 503, body

        # The runbook: promote the standby, then point DATABASE_URL at it (no replica any more) and restart.
        assert sql(clusters.replica_port, "SELECT pg_promote(wait => true)") == (True,)
        assert sql(clusters.replica_port, "SELECT pg_is_in_recovery()") == (False,)
        clusters.env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{clusters.replica_port}/itsm"
        del clusters.env["ITSM_REPLICA_DATABASE_URL"]
        with api(clusters, tmp_path / "after.log") as base:
            writer = token(base, "writer")
            status, _, body = http("POST", f"{base}/api/v1/tickets/", {"title": "After the failover"}, token=writer)
            assert status == 201, body
            seconds = time.monotonic() - failed_at
            status, _, page = http("GET", f"{base}/api/v1/tickets/?page_size=200", token=writer)
            assert sorted(ticket["title"] for ticket in page["results"]) == ["After the failover", "Before the failure"]
            _, _, health = http("GET", f"{base}/health/", token=writer)
            assert health["status"] == "ok"
            assert "replica" not in health["checks"]
    with capsys.disabled():
        sys.stdout.write(f"\nfailover: primary killed to the first write on the promoted standby in {seconds:.1f} s\n")
