"""Without ITSM_REPLICA_DATABASE_URL (the default, and the test suite's): every query goes to the primary and the
replica machinery does no work: no probe, no query, no replica in /health/."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils.connection import ConnectionDoesNotExist

from itsm import replica
from itsm.models import Ticket


def test_without_a_replica_every_read_and_write_goes_to_the_primary(rf):
    router = replica.ReplicaRouter()
    request = rf.get("/api/v1/tickets/")
    with replica.replica_reads(request) as alias:
        assert alias == "default"
        assert router.db_for_read(Ticket) == "default"
    assert router.db_for_write(Ticket) == "default"
    assert replica.status() is None
    assert not replica.configured()


def test_the_router_sends_reads_where_replica_reads_chose_and_only_inside_it():
    router = replica.ReplicaRouter()
    token = replica._reads_from.set("replica")
    try:
        assert router.db_for_read(Ticket) == "replica"
        assert router.db_for_write(Ticket) == "default"
    finally:
        replica._reads_from.reset(token)
    assert router.db_for_read(Ticket) == "default"
    assert router.allow_migrate("replica", "itsm") is False
    assert router.allow_migrate("default", "itsm") is True


def test_without_a_replica_a_list_costs_no_extra_query_and_health_has_no_replica(admin_client):
    with CaptureQueriesContext(connections["default"]) as queries, replica.replica_reads(None):
        pass
    assert len(queries) == 0
    body = admin_client.get("/health/").json()
    assert set(body["checks"]) == {"database", "cache", "broker"}


def test_wal_positions_order_as_postgresql_orders_them():
    ordered = ["0/0", "0/16B3748", "0/FFFFFFFF", "1/0", "1/10", "9/FFFFFFFF", "A/0", "16/B374D848"]
    assert [replica._position(lsn) for lsn in ordered] == sorted(replica._position(lsn) for lsn in ordered)


def test_a_write_at_or_before_the_replay_this_process_has_seen_asks_the_replica_nothing(monkeypatch):
    """The remembered position answers. The suite has no `replica` connection, so a question to the replica raises:
    a write past that position shows it."""
    monkeypatch.setattr(replica, "_replayed", replica._position("2/0"))
    assert replica._replayed_past("1/FFFFFFFF")
    assert replica._replayed_past("2/0")
    with pytest.raises(ConnectionDoesNotExist):
        replica._replayed_past("2/1")
    replica._forget_replayed()
    assert replica._replayed == 0
