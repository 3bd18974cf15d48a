"""Indexes for the benchmarked reads (docs/benchmarks.md).

- The agents' queue (one status, one priority, newest first) reads its page straight from an index.
- Full-text search reads a stored tsvector column instead of computing to_tsvector for every row it looks at:
  with 1,000,000 tickets PostgreSQL walks the created_at index newest first and filters, and with the expression
  each row cost ~0.1 ms (100-200 ms per search); the stored column makes the filter a cheap comparison. The GIN
  index keeps its name, idx_ticket_search, on the column. PostgreSQL only; on SQLite search is a substring match.

Adding a stored generated column rewrites the ticket table (about two minutes per million tickets, holding an
exclusive lock): run it in a maintenance window on a large installation.
"""

from django.conf import settings
from django.db import migrations, models

# Must stay the expression of itsm.queries.tickets (the column is what the search reads).
DOCUMENT = "to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || coalesce(description, ''))"
FORWARD = [
    f"ALTER TABLE itsm_ticket ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS ({DOCUMENT}) STORED",
    "DROP INDEX IF EXISTS idx_ticket_search",
    "CREATE INDEX idx_ticket_search ON itsm_ticket USING gin (search_vector)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS idx_ticket_search",
    "ALTER TABLE itsm_ticket DROP COLUMN IF EXISTS search_vector",
    f"CREATE INDEX idx_ticket_search ON itsm_ticket USING gin (({DOCUMENT}))",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("itsm", "0007_jobrun_output_and_job_watch"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(fields=["status", "priority", "-created_at", "-id"], name="idx_ticket_status_prio_new"),
        ),
        migrations.RunPython(_run(FORWARD), _run(BACKWARD)),
    ]
