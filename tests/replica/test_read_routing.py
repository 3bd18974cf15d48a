"""Reads past one database server, against real clusters: a primary made with initdb on a loopback port, a hot
standby streaming from it (pg_basebackup -R), a Redis, and the API under gunicorn with ITSM_REPLICA_DATABASE_URL.

- Read-your-writes: with the replica's replay paused, the client that created a ticket lists it at once (its reads
  stay on the primary until the replica has replayed its write), while another client's list comes from the
  replica and does not have it yet; a ticket's page (not lag-tolerant) is read from the primary by anyone.
- A replica that lags past ITSM_REPLICA_MAX_LAG_SECONDS is not read from: the other client's list has the ticket.
- Replica stopped: lists are served from the primary, `/health/` says degraded (replica down), never down.
"""

from __future__ import annotations

import pytest

from tests.replica.conftest import Clusters, api, sql, token
from tests.system.processes import eventually, http, wait_for_postgres

pytestmark = pytest.mark.slow


def listed(base: str, who: str) -> list[str]:
    status, _, body = http("GET", f"{base}/api/v1/tickets/?page_size=200", token=who)
    assert status == 200, body
    return [ticket["title"] for ticket in body["results"]]


def caught_up(clusters: Clusters) -> None:
    (lsn,) = sql(clusters.primary_port, "SELECT pg_current_wal_insert_lsn()::text")
    eventually(
        lambda: sql(clusters.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") == (True,),
        30,
        "the replica replayed everything",
    )


def test_a_writer_reads_its_write_while_others_read_the_replica_until_it_replays(clusters, tmp_path):
    with api(clusters, tmp_path / "api.log", ITSM_REPLICA_MAX_LAG_SECONDS="3600") as base:
        writer, reader = token(base, "writer"), token(base, "reader")
        caught_up(clusters)
        sql(clusters.replica_port, "SELECT pg_wal_replay_pause()")
        try:
            status, _, ticket = http("POST", f"{base}/api/v1/tickets/", {"title": "Printer on fire"}, token=writer)
            assert status == 201, ticket
            # The writer's own list: from the primary, which has it.
            assert "Printer on fire" in listed(base, writer)
            # Anyone else's list: from the replica, paused before the write.
            assert "Printer on fire" not in listed(base, reader)
            # A ticket's page is not lag-tolerant: the primary serves it to anyone.
            status, _, page = http("GET", f"{base}/api/v1/tickets/{ticket['id']}/", token=reader)
            assert (status, page["title"]) == (200, "Printer on fire")
            # Staff see the replica in /health/'s detail.
            _, _, health = http("GET", f"{base}/health/", token=reader)
            assert health["checks"]["replica"]["status"] == "ok"
        finally:
            sql(clusters.replica_port, "SELECT pg_wal_replay_resume()")
        eventually(lambda: "Printer on fire" in listed(base, reader), 30, "the replica replayed the ticket")


def test_a_replica_lagging_past_the_limit_is_not_read_from(clusters, tmp_path):
    with api(clusters, tmp_path / "api.log", ITSM_REPLICA_MAX_LAG_SECONDS="1") as base:
        writer, reader = token(base, "writer"), token(base, "reader")
        caught_up(clusters)
        sql(clusters.replica_port, "SELECT pg_wal_replay_pause()")
        try:
            status, _, body = http("POST", f"{base}/api/v1/tickets/", {"title": "Lagging replica"}, token=writer)
            assert status == 201, body
            # Paused, the replica falls behind; past 1 s it is "lagging" and the reader's list comes from the primary.
            eventually(lambda: "Lagging replica" in listed(base, reader), 30, "the reader's list from the primary")
            assert sql(clusters.replica_port, "SELECT count(*) FROM itsm_ticket WHERE title = 'Lagging replica'") == (
                0,
            )
            _, _, health = http("GET", f"{base}/health/", token=reader)
            assert (health["status"], health["checks"]["replica"]["status"]) == ("degraded", "lagging")
        finally:
            sql(clusters.replica_port, "SELECT pg_wal_replay_resume()")


def test_with_the_replica_stopped_reads_go_to_the_primary_and_health_is_degraded(clusters, tmp_path):
    with api(clusters, tmp_path / "api.log") as base:
        writer, reader = token(base, "writer"), token(base, "reader")
        status, _, body = http("POST", f"{base}/api/v1/tickets/", {"title": "Replica gone"}, token=writer)
        assert status == 201, body
        clusters.replica.stop()
        try:
            assert "Replica gone" in listed(base, reader)
            status, _, health = http("GET", f"{base}/health/", token=reader)
            assert status == 200
            assert (health["status"], health["checks"]["replica"]["status"]) == ("degraded", "down")
            assert health["checks"]["database"]["status"] == "ok"
            _, _, public = http("GET", f"{base}/health/")
            assert public == {"status": "degraded"}
        finally:
            clusters.replica.start()
            wait_for_postgres(clusters.replica_port, timeout=60)
