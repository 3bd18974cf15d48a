"""gunicorn settings, read from the environment. Multiprocess Prometheus metrics need the hooks below."""

import json
import os
import shutil
from pathlib import Path

from gunicorn import util

bind = f"{os.environ.get('ITSM_BIND_HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("ITSM_GUNICORN_WORKERS", "4"))
# Below Nginx's proxy_read_timeout (60 s), so gunicorn gives up first and Nginx can report it.
timeout = int(os.environ.get("ITSM_GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("ITSM_GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# Trust X-Forwarded-* only from the proxy in front (Nginx); the default is loopback only.
forwarded_allow_ips = os.environ.get("ITSM_FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's largest; Nginx refuses longer lines first (large_client_header_buffers 4 8k), with a JSON 414.
limit_request_line = 8190
accesslog = "-"
errorlog = "-"
# ITSM_LOG_FORMAT=json (the default outside `make run`): gunicorn's lines and its access log are JSON lines on
# stdout like the application's, the access line with the request id (docs/operations.md#logs).
if os.environ.get("ITSM_LOG_FORMAT", "json").strip().lower() == "json":
    access_log_format = "%(m)s %(U)s %(s)s %(M)sms"
    logconfig_dict = {
        "formatters": {"json": {"()": "itsm.log_context.GunicornJsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "loggers": {
            name: {"level": "INFO", "handlers": ["console"], "propagate": False}
            for name in ("gunicorn.error", "gunicorn.access")
        },
    }


def on_starting(server):
    """Empty the metrics directory: samples of a previous run's dead workers must not be summed in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _write_json_error(sock, status_int, reason, mesg):
    """gunicorn answers what it cannot parse (a request line over limit_request_line: 414, headers too large: 431,
    a malformed request: 400) itself, before Django, with an HTML page. The API answers JSON everywhere: the same
    status, as JSON. gunicorn's workers call util.write_error by its module name, so replacing it here (the master
    reads this file before it forks them) is enough."""
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason, "code": reason.lower().replace(" ", "_")})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body.encode())


util.write_error = _write_json_error
