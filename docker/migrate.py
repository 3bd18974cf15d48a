"""`manage.py migrate --noinput`, one process at a time.

`docker compose up -d --scale backend=3` starts three backends that each migrate on start; a PostgreSQL
advisory lock makes them take turns, so the second and third find nothing left to do instead of failing on a
half-created table.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

# Run as `python docker/migrate.py` from the project root: make the project importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itsm_project.settings")
    django.setup()

    from django.core.management import call_command

    # The advisory lock (itsm/services/upgrade.py) that `manage.py upgrade` takes too.
    from itsm.services.upgrade import migration_lock, upgrade_plan, upgrade_plan_text

    with migration_lock():
        # The plan in the container's (or the Job's) log first, irreversible steps flagged. A release with
        # migrations goes through `manage.py upgrade` beforehand (docs/runbooks/upgrade.md), which takes the
        # pre-upgrade backup; here the plan is then empty.
        print(upgrade_plan_text(upgrade_plan()), flush=True)  # noqa: T201 - the container's log
        call_command("migrate", interactive=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
