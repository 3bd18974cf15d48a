"""PostgreSQL full-text index over ticket title and description, and the three role groups."""

from django.db import migrations

# The same expression as itsm.queries.tickets.TICKET_SEARCH_DOCUMENT: PostgreSQL uses the index only on a match.
CREATE_INDEX = (
    "CREATE INDEX IF NOT EXISTS idx_ticket_search ON itsm_ticket USING gin "
    "((to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || coalesce(description, ''))))"
)
DROP_INDEX = "DROP INDEX IF EXISTS idx_ticket_search"


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_INDEX)


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_INDEX)


def create_roles(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in ("requester", "agent", "admin"):
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("itsm", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(create_search_index, drop_search_index),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
