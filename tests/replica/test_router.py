"""Without ITSM_REPLICA_DATABASE_URL (the default, and the test suite's): every query goes to the primary and the
replica machinery does no work: no probe, no query, no replica in /health/."""

from __future__ import annotations

from django.db import connections
from django.test.utils import CaptureQueriesContext

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
