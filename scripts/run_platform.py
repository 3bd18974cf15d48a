#!/usr/bin/env python3
"""Run the API, one Celery worker and Celery Beat in the foreground; Ctrl-C stops all of them.

Each process runs in its own process group. On Ctrl-C or SIGTERM each gets SIGTERM and up to GRACE seconds
to finish its current work (a Celery warm shutdown takes a few seconds); then its whole group gets SIGKILL, so
no child it forked (gunicorn workers, Celery pool processes) is left behind. If one process dies, the
others are stopped too, so nothing is left half-running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

GRACE = float(os.environ.get("ITSM_STOP_GRACE_SECONDS", "30"))
BIN = Path(sys.executable).parent
QUEUES = "critical,notifications,backups,default"
COMMANDS = {
    "api": [str(BIN / "gunicorn"), "itsm_project.wsgi", "-c", "gunicorn.conf.py"],
    "worker": [
        str(BIN / "celery"),
        "-A",
        "itsm_project",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "2",
        "-Q",
        QUEUES,
        "--without-gossip",
        "--without-mingle",
    ],
    "beat": [str(BIN / "celery"), "-A", "itsm_project", "beat", "--loglevel", "INFO"],
}


def _relay(name: str, stream: object) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:<6} | {line}")
        sys.stdout.flush()


def main() -> int:
    stopping = threading.Event()
    processes: dict[str, subprocess.Popen[str]] = {}

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    _prepare_metrics_directory()
    for name, command in COMMANDS.items():
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        processes[name] = process
        threading.Thread(target=_relay, args=(name, process.stdout), daemon=True).start()
        print(f"system | started {name} (pid {process.pid})", flush=True)
        if name == "api":
            # The manual's order: the API first. gunicorn empties the shared metrics directory before it
            # binds, so the worker and beat may only start writing their samples after that.
            _wait_for_port(int(os.environ.get("PORT", "8000")), process, stopping)

    exit_code = 0
    while not stopping.is_set():
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"system | {name} exited with {process.returncode}; stopping the others", flush=True)
                exit_code = process.returncode or 1
                stopping.set()
        stopping.wait(0.5)

    print("system | stopping: SIGTERM to every process", flush=True)
    for process in processes.values():
        # Only the leader: gunicorn and Celery stop their own children in order, and a Celery pool child
        # killed under its parent's feet makes the parent wait for it.
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + GRACE
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"system | {name} did not stop in {GRACE:.0f} s: SIGKILL", flush=True)
    for process in processes.values():
        # Also reaps any child a process left behind in its group.
        _signal_group(process, signal.SIGKILL)
        process.wait()
    print("system | all stopped", flush=True)
    return exit_code


def _prepare_metrics_directory() -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)


def _wait_for_port(port: int, process: subprocess.Popen[str], stopping: threading.Event) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and not stopping.is_set():
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


if __name__ == "__main__":
    sys.exit(main())
