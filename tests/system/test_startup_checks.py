"""A settings mistake stops the API at start, with the check's id in the log, instead of failing later."""

from __future__ import annotations

import subprocess

import pytest

from tests.system.processes import BIN, ROOT, base_env, free_port

pytestmark = pytest.mark.slow


def test_gunicorn_refuses_to_start_on_a_platform_check_error(tmp_path):
    env = base_env(
        ITSM_SLA_AT_RISK_PERCENT="0", PORT=str(free_port()), ITSM_GUNICORN_WORKERS="1", ITSM_VAR_DIR=str(tmp_path)
    )
    result = subprocess.run(
        [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "itsm.E010" in result.stdout + result.stderr


def test_a_malformed_setting_names_the_variable():
    env = base_env(ITSM_PAGE_SIZE="twenty")
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "ITSM_PAGE_SIZE='twenty' is not an integer" in result.stderr
