"""Rows a fault test needs in its own database, written by a process of its own (`python -m tests.fault.seed`)
with the stack's DATABASE_URL:

- `users`: an admin, an agent and a requester with API tokens, printed as JSON {username: token}.
- `endpoint NAME URL`: an enabled webhook endpoint for every team's incidents.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itsm_project.settings")
django.setup()

from knox.models import AuthToken  # noqa: E402  (needs the app registry)

from itsm.models import WebhookEndpoint  # noqa: E402
from tests.factories import make_user  # noqa: E402

USERS = {"fault-admin": "admin", "fault-agent": "agent", "fault-requester": "requester"}


def users() -> dict[str, str]:
    tokens = {}
    for username, role in USERS.items():
        _, tokens[username] = AuthToken.objects.create(user=make_user(username, role))
    return tokens


def endpoint(name: str, url: str) -> int:
    return int(WebhookEndpoint.objects.create(name=name, url=url, secret="fault-test-secret").pk)


if __name__ == "__main__":
    if sys.argv[1] == "users":
        sys.stdout.write(json.dumps(users()) + "\n")
    elif sys.argv[1] == "endpoint":
        sys.stdout.write(f"{endpoint(sys.argv[2], sys.argv[3])}\n")
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")
