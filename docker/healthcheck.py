"""HEALTHCHECK of the API container: GET /health/ from this container's gunicorn; exit 0 on a 200.

200 means the database answers ("ok", or "degraded" when only the cache or the broker is down); 503 means it
does not. Django answers 400 to a Host it does not serve, so the probe sends the first name of
DJANGO_ALLOWED_HOSTS.
"""

from __future__ import annotations

import http.client
import os
import sys


def probe_host() -> str:
    for name in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        host = name.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request("GET", "/health/", headers={"Host": probe_host()})
        response = connection.getresponse()
        body = response.read(300).decode(errors="replace")
    except OSError as error:
        sys.stderr.write(f"/health/ unreachable on port {port}: {error}\n")
        return 1
    finally:
        connection.close()
    if response.status != 200:
        sys.stderr.write(f"/health/ answered {response.status}: {body}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
