"""Concurrent POSTs with one Idempotency-Key against gunicorn (several workers): one object, the rest 409 or replay.

Without the key's unique constraint, or without the key at all, several of the simultaneous requests each create."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings

from itsm.models import Backup, IdempotencyKey, Incident, Ticket
from tests.fault._support import Answer, call, live_api, user_with_token

logger = logging.getLogger(__name__)
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SENDERS = 12
ROUNDS = 3
CASES = {
    "tickets": ("requester", {"title": "Mail bounces", "priority": "high"}, Ticket, 201),
    "incidents": ("agent", {"title": "Checkout errors", "severity": "medium"}, Incident, 201),
    "backups": ("admin", {"kind": "database"}, Backup, 202),
}


@pytest.fixture(scope="module")
def base(django_db_setup, tmp_path_factory):
    """One server for the three collections: each test makes its own users, and the database is emptied between."""
    with live_api(tmp_path_factory.mktemp("idempotency-api")) as url:
        yield url


@pytest.fixture
def broker_queue():
    """The real broker's backups queue: a backup POST queues its run there once."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("backups")
    yield broker
    broker.delete("backups")


def burst(url: str, token: str, body: dict[str, str], key: str) -> list[Answer]:
    """SENDERS identical POSTs released at the same instant."""
    barrier = threading.Barrier(SENDERS)

    def send(_: int) -> Answer:
        barrier.wait(timeout=30)
        return call("POST", url, token, body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        return list(pool.map(send, range(SENDERS)))


@pytest.mark.parametrize("collection", list(CASES))
def test_simultaneous_duplicates_create_one_object_and_get_409_or_the_replay(base, collection, broker_queue):
    role, body, model, created = CASES[collection]
    _, token = user_with_token(f"idem-{role}", role)
    url = f"{base}/api/v1/{collection}/"
    summaries = []
    # A race is a matter of chance: several bursts, each with its own key, make a lost one near certain to show.
    for round_ in range(1, ROUNDS + 1):
        key = f"{collection}-7f3c9a-{round_}"
        answers = burst(url, token, body, key)
        originals = [a for a in answers if a.status == created and "Idempotent-Replayed" not in a.headers]
        replays = [a for a in answers if a.status == created and a.headers.get("Idempotent-Replayed") == "true"]
        in_progress = [a for a in answers if a.status == 409]
        summary = f"{len(originals)} created, {len(replays)} replayed, {len(in_progress)} got 409"
        summaries.append(summary)
        assert len(originals) == 1, (round_, summary, [(a.status, a.body) for a in answers])
        assert len(originals) + len(replays) + len(in_progress) == SENDERS, [(a.status, a.body) for a in answers]
        assert all(a.body["code"] == "idempotency_key_in_use" for a in in_progress)
        assert all(a.headers["Retry-After"] == "1" for a in in_progress)
        (original,) = originals
        assert all(a.body == original.body for a in replays)
        assert model._default_manager.count() == round_, summary

        # Once the first has finished, a retry is the replay of the first response, headers included.
        retry = call("POST", url, token, body, headers={"Idempotency-Key": key})
        assert (retry.status, retry.body, retry.headers["Idempotent-Replayed"]) == (created, original.body, "true")
        for name in ("Location", "ETag"):
            assert retry.headers.get(name) == original.headers.get(name), name

        # The same key with another body is refused and creates nothing.
        other = call("POST", url, token, {**body, "title": "Something else"}, headers={"Idempotency-Key": key})
        assert (other.status, other.body["code"]) == (422, "idempotency_key_reused")

    assert model._default_manager.count() == ROUNDS
    assert set(IdempotencyKey.objects.values_list("state", flat=True)) == {IdempotencyKey.State.COMPLETED}
    if model is Backup:
        assert broker_queue.llen("backups") == ROUNDS  # each backup's run was queued once
    logger.info("Idempotency-Key, %d simultaneous POST %s: %s", SENDERS, collection, "; ".join(summaries))
