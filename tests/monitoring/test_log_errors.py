"""ERROR log records are counted per kind of process into itsm_log_errors_total (the ErrorLogsRising alert)."""

from __future__ import annotations

import logging
import time
import urllib.request

import pytest
from celery import signals
from django.conf import settings
from prometheus_client import REGISTRY

from itsm.log_metrics import ErrorCountingHandler, process_kind
from itsm_project.celery import app
from tests.system.processes import BIN, base_env, current_database_url, free_port, started


def errors(process: str) -> float:
    return REGISTRY.get_sample_value("itsm_log_errors_total", {"process": process}) or 0.0


def test_an_error_log_anywhere_increments_the_counter_and_a_warning_does_not():
    before = errors("api")
    logging.getLogger("itsm.services.anything").error("the mail server refused the login")
    logging.getLogger("django.request").exception("Internal Server Error: /api/v1/tickets/")
    logging.getLogger("itsm.services.anything").warning("a retry")
    assert errors("api") == before + 2


def test_logging_installs_the_counter_on_the_root_logger():
    assert any(isinstance(handler, ErrorCountingHandler) for handler in logging.getLogger().handlers)


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (("/venv/bin/gunicorn", "itsm_project.wsgi", "-c", "gunicorn.conf.py"), "api"),
        (("manage.py", "runserver"), "api"),
        (("/venv/bin/celery", "-A", "itsm_project", "worker", "-Q", "critical"), "worker"),
        (("/venv/bin/celery", "-A", "itsm_project", "beat", "--loglevel", "INFO"), "beat"),
    ],
)
def test_the_process_kind_comes_from_the_command_line(argv, kind):
    assert process_kind(argv) == kind


def test_celery_loggers_get_the_counter_back_after_celery_replaces_their_handlers():
    logger = logging.getLogger("celery.test-hijacked")
    logger.handlers = []
    signals.after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO, logfile=None, format="")
    signals.after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO, logfile=None, format="")
    assert [type(handler) for handler in logger.handlers] == [ErrorCountingHandler]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_counts_its_error_logs_under_process_worker(tmp_path):
    port = free_port()
    env = base_env(
        DATABASE_URL=current_database_url(),
        REDIS_URL=str(settings.REDIS_URL),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        ITSM_CELERY_METRICS_PORT=str(port),
    )
    (tmp_path / "metrics").mkdir()
    command = [str(BIN / "celery"), "-A", "itsm_project", "worker", "-Q", "default", "--concurrency", "1"]
    wanted = 'itsm_log_errors_total{process="worker"} 1.0'
    body, sent = "", False
    with started(command, env, tmp_path / "worker.log"):
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and wanted not in body:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                time.sleep(0.5)
                continue
            if not sent:
                # The worker logs "Received unregistered task" at ERROR and drops the message.
                app.send_task("itsm.tasks.no_such_task", queue="default")
                sent = True
            time.sleep(0.5)
    log = (tmp_path / "worker.log").read_text()
    assert "unregistered task" in log, log[-2000:]
    assert wanted in body, log[-2000:]
