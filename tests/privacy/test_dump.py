"""The database itself: after an erasure a fresh pg_dump of it (the real binary, the test database's connection
settings) holds neither the person's name nor any of their addresses, in any table."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
from django.db import connection

from itsm.models import InboundMessage
from itsm.services.privacy import personal_data_erase
from tests.privacy.conftest import TRACES

pytestmark = pytest.mark.django_db(transaction=True)


def pg_dump() -> str:
    """The test database as plain SQL, schema and data, as committed."""
    binary = shutil.which("pg_dump")
    assert binary is not None, "pg_dump is not installed"
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
    command = [binary, "--no-owner", "-h", str(db["HOST"] or "localhost"), "-U", str(db["USER"]), str(db["NAME"])]
    if db.get("PORT"):
        command += ["-p", str(db["PORT"])]
    result = subprocess.run(command, capture_output=True, env=env, check=True, timeout=120)
    return result.stdout.decode("utf-8", "replace")


def found(dump: str) -> dict[str, list[str]]:
    """Each trace with the dump's lines holding it (case-insensitive), cut for reading."""
    lines = dump.lower().splitlines()
    return {trace: [line[:160] for line in lines if trace.lower() in line][:5] for trace in TRACES}


def test_a_fresh_database_dump_holds_neither_the_name_nor_the_addresses(person: Any):
    before = {trace: hits for trace, hits in found(pg_dump()).items() if hits}
    assert set(before) == set(TRACES)  # the dump does show them while they are there
    personal_data_erase(user=person.user, comments="keep", source="command")
    after = {trace: hits for trace, hits in found(pg_dump()).items() if hits}
    assert after == {}
    # bytea is dumped as hex: the raw mail is checked as bytes.
    for raw in InboundMessage.objects.values_list("raw", flat=True):
        assert not any(trace.lower().encode() in bytes(raw).lower() for trace in TRACES)
