"""The benchmark's gunicorn: started in its own process group against the bench database, always stopped whole."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def server_env(database_url: str, redis_url: str, port: int, workers: int, metrics_dir: Path) -> dict[str, str]:
    """Production settings (DEBUG off, 4 workers, token auth) against the bench database and Redis databases."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "ITSM_BIND_HOST": "127.0.0.1",
        "ITSM_GUNICORN_WORKERS": str(workers),
        # No recycling: the per-worker memory must show growth, not be reset every 2,000 requests.
        "ITSM_GUNICORN_MAX_REQUESTS": "0",
        "ITSM_ALERTMANAGER_TOKEN": secrets.token_urlsafe(24),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = int(env["PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            # The access log (stdout) is dropped: at thousands of requests per second it would fill the disk.
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            with contextlib.suppress(OSError):
                status, _ = self.request("GET", "/health/", timeout=2)
                if status == 200 and len(self.workers()) >= int(self.env["ITSM_GUNICORN_WORKERS"]):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer /health/ in {timeout:.0f} s; see {self.log}")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (loopback URL built here)
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:500]

    def login(self, username: str, password: str) -> str:
        status, body = self.request("POST", "/api/v1/auth/token/", {"username": username, "password": password})
        if status != 200:
            raise RuntimeError(f"login as {username} failed: {status} {body!r}")
        return str(body["token"])

    def session_login(self, username: str, password: str) -> str:
        """Sign in through the portal's form as a browser does (CSRF cookie and token); returns the session id."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(self.base + "/portal/sign-in/", timeout=10) as response:
            page = response.read().decode()
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if found is None:
            raise RuntimeError("the portal's sign-in page has no CSRF token")
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": found[1], "username": username, "password": password})
        with opener.open(self.base + "/portal/sign-in/", data=form.encode(), timeout=10) as response:
            response.read()
        session = next((cookie.value for cookie in jar if cookie.name == "sessionid"), None)
        if not session:
            raise RuntimeError(f"portal sign-in as {username} failed")
        return str(session)

    def workers(self) -> list[int]:
        """The gunicorn workers: the master's children."""
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in path.read_text().split()]
        return []

    def rss_mb(self) -> list[float]:
        """Resident memory of each worker, in MB (VmRSS)."""
        sizes = []
        for pid in self.workers():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def stop(self, grace: float = 20) -> None:
        """SIGTERM to gunicorn, SIGKILL to its whole process group after `grace` seconds, then check it is gone."""
        if self.process is None:
            return
        pgid = self.process.pid
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait()
        left = processes_in_group(pgid)
        if left:
            raise RuntimeError(f"processes left behind in group {pgid}: {left}")


def processes_in_group(pgid: int) -> list[int]:
    """Every live process whose process group is `pgid` (read from /proc, like `ps -o pgid`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The fields after the command name (which may hold spaces) start with state, ppid, pgrp.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found
