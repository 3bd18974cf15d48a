"""What each pytest-xdist worker gets of its own, so that tests running at once in several workers share nothing.

`make test` runs the suite in workers (`pytest -n N`). pytest-django already gives each worker its own test
database (test_<name>_gw0, _gw1, ...). This module, whose hooks tests/conftest.py takes in, gives each worker the
rest, through the environment the worker starts with (set before Django reads its settings, and inherited by the
processes a test starts):

- its own Redis databases: worker i uses database base + 2*i of REDIS_URL's server for the cache and, as the
  settings derive it, the next one for the Celery broker (conftest's cache.clear() and a test's flushdb() stay in
  the worker; a Celery worker a test starts takes only that worker's tasks);
- its own ITSM_VAR_DIR (the read-only flag file, the Beat schedule, the generated key), in a temporary directory
  removed at the end of the run.

Loopback ports are handed out by tests.system.processes.free_port(), which no two test processes on the machine
share. A test that must not run beside another of its kind gets `@pytest.mark.xdist_group("name")`: with
`--dist loadgroup` (the Makefile's) the tests of one group run one after another in one worker.

In each worker, before xdist sends out the tests (pytest_collection_modifyitems):

- the tests that share a module-, class- or package-scoped fixture (a server started once for a module, a
  sequence of commands in one terminal) are one group, so they run in one worker, in their order, and the
  fixture is set up once;
- slow tests come first: the long ones start while every worker is free, and the many short ones fill the
  workers' ends evenly, instead of one worker starting a minute-long test when the others are done.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

# Redis's default `databases 16`: numbers 0 to 15.
REDIS_DATABASES = 16
_VAR_ROOT = pytest.StashKey[Path]()
_GROUPS_FILE = "ITSM_TEST_GROUPS_FILE"  # where the workers write each grouped test's group, for the controller


def redis_url_of_worker(url: str, index: int) -> str:
    """The cache database of worker `index`: two past the previous worker's (cache, then broker)."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + 2 * index}"))


def _check_redis_room(url: str, workers: int) -> None:
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    last = base + 2 * workers - 1
    if last >= REDIS_DATABASES:
        raise pytest.UsageError(
            f"{workers} workers need Redis databases {base} to {last} of REDIS_URL's server (a cache and a broker "
            f"database each), and Redis has 0 to {REDIS_DATABASES - 1}: set REDIS_URL to a database number of at "
            f"most {REDIS_DATABASES - 2 * workers}, or run fewer workers (-n)."
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    """In the controller, before the workers start: each worker's Redis databases and var directory."""
    var_root = Path(tempfile.mkdtemp(prefix="itsm-test-var-"))
    config.stash[_VAR_ROOT] = var_root
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url.startswith(("redis://", "rediss://")):
        _check_redis_room(redis_url, len(specs))
    for index, spec in enumerate(specs):
        if redis_url.startswith(("redis://", "rediss://")):
            spec.env["REDIS_URL"] = redis_url_of_worker(redis_url, index)
        spec.env["ITSM_VAR_DIR"] = str(var_root / f"worker-{index}")
        spec.env[_GROUPS_FILE] = str(var_root / "groups.json")


def pytest_unconfigure(config: pytest.Config) -> None:
    var_root = config.stash.get(_VAR_ROOT, None)
    if var_root is not None:
        shutil.rmtree(var_root, ignore_errors=True)


SHARED_SCOPES = ("class", "module", "package")


def _shared_scope(item: pytest.Item) -> str | None:
    """The class, module or package whose fixture (one of the tests', not a plugin's) `item` shares, if any."""
    widest: str | None = None
    for definitions in getattr(item, "_fixtureinfo").name2fixturedefs.values():  # noqa: B009
        if not definitions or not definitions[-1].baseid or definitions[-1].scope not in SHARED_SCOPES:
            continue
        scope = definitions[-1].scope
        if scope == "class" and item.getparent(pytest.Class) is None:
            continue
        if widest is None or SHARED_SCOPES.index(scope) > SHARED_SCOPES.index(widest):
            widest = scope
    if widest is None:
        return None
    node: pytest.Item | pytest.Collector | None
    if widest == "class":
        node = item.getparent(pytest.Class)
    elif widest == "module":
        node = item.getparent(pytest.Module)
    else:
        node = item.getparent(pytest.Package)
    return node.nodeid if node is not None else None


def _group(item: pytest.Item) -> str | None:
    """The test's xdist_group mark, or else the scope of the fixture it shares with other tests."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    return _shared_scope(item)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In each worker: the groups for the controller's scheduler, and the slow groups first (stable: the tests of
    one group keep their order, as a module's tests may build on each other)."""
    groups_file = os.environ.get(_GROUPS_FILE)
    if not hasattr(config, "workerinput") or not groups_file:
        return  # a serial run keeps the files' order
    groups = {item.nodeid: group for item in items if (group := _group(item)) is not None}
    slow = {groups.get(item.nodeid, item.nodeid) for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: groups.get(item.nodeid, item.nodeid) not in slow)
    # Every worker collects the same tests, so each writes the same file; os.replace makes each write whole.
    partial = Path(f"{groups_file}.{os.getpid()}")
    partial.write_text(json.dumps(groups))
    partial.replace(groups_file)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`: xdist's scheduling by scope, with the groups the workers found (xdist's own loadgroup
    renames node ids, which pytest 9.2 no longer lets it do)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    groups_file = config.stash[_VAR_ROOT] / "groups.json"

    class GroupScheduling(LoadScopeScheduling):
        _groups: dict[str, str] | None = None

        def __init__(self, config: pytest.Config, log: Any) -> None:
            super().__init__(config, log)
            self.config.option.loadscopereorder = False  # the workers' order (slow groups first), not by size

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:  # read once every worker has collected (and so written the file)
                self._groups = json.loads(groups_file.read_text()) if groups_file.exists() else {}
            _, at, suffix = nodeid.rpartition("@")
            if at and suffix in self._groups.values():  # an xdist that renames node ids again: its group suffix
                return suffix
            return self._groups.get(nodeid, nodeid)

    return GroupScheduling(config, log)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, request: pytest.FixtureRequest
) -> None:
    """A worker whose test database does not exist yet starts from a copy of a migrated template (test_<name>_template,
    migrated once under a lock) instead of migrating its own while the other workers migrate theirs; pytest-django
    then finds it (--reuse-db) and applies only the migrations the template lacks. --create-db drops the template."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if not hasattr(request.config, "workerinput") or "postgresql" not in database["ENGINE"]:
        return
    if request.config.getvalue("reuse_db"):
        _clone_template(database, fresh=bool(request.config.getvalue("create_db")))


def _clone_template(database: Any, *, fresh: bool) -> None:
    import fcntl
    import subprocess

    import psycopg2
    from django.conf import settings

    from tests.system.processes import PYTHON, ROOT, base_env

    name = database["TEST"]["NAME"]
    template = f"{name.rsplit('_gw', 1)[0]}_template"
    server = {key.lower(): database.get(key) or None for key in ("HOST", "PORT", "USER", "PASSWORD")}
    server.update({key.lower(): value for key, value in settings.ITSM_DIRECT_DATABASE.items()})  # past PgBouncer
    connection = psycopg2.connect(dbname="postgres", **server)
    connection.autocommit = True
    lock = Path(tempfile.gettempdir()) / f"itsm-test-{template}.lock"
    try:
        with connection.cursor() as cursor, lock.open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # one worker migrates the template, the others wait for it
            exists = "SELECT 1 FROM pg_database WHERE datname = %s"
            if fresh:
                cursor.execute(f'DROP DATABASE IF EXISTS "{template}"')
                return
            cursor.execute(exists, [name])
            if cursor.fetchone():
                return
            cursor.execute(exists, [template])
            if not cursor.fetchone():
                cursor.execute(f'CREATE DATABASE "{template}"')
                password = f":{server['password']}" if server["password"] else ""
                host = f"{server['host'] or '127.0.0.1'}:{server['port'] or 5432}"
                migrate = subprocess.run(
                    [PYTHON, "manage.py", "migrate", "--noinput"],
                    env=base_env(DATABASE_URL=f"postgres://{server['user']}{password}@{host}/{template}"),
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if migrate.returncode != 0:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{template}"')
                    raise RuntimeError(f"migrating {template} failed:\n{migrate.stdout}\n{migrate.stderr}")
            cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        connection.close()
