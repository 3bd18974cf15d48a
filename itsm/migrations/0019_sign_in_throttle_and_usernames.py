"""Failed sign-ins counted in the database (itsm.services.logins), and user names unique once normalised.

Existing user names are NFKC-normalised (a full-width `ａｇｅｎｔ` becomes `agent`, as Django's forms store it), then
a unique index on lower(username) keeps `Agent` from sitting beside `agent`. If two existing accounts already
collide, the migration stops and names them: rename or merge one (in the admin or the Django shell), then run
`manage.py migrate` again.
"""

import unicodedata

from django.db import migrations, models

INDEX = "itsm_user_username_lower_unique"


def normalise_usernames(apps, schema_editor):
    User = apps.get_model("auth", "User")
    seen: dict[str, list[str]] = {}
    for pk, username in User.objects.order_by("pk").values_list("pk", "username"):
        normalised = unicodedata.normalize("NFKC", username)
        seen.setdefault(normalised.lower(), []).append(username)
        if normalised != username:
            User.objects.filter(pk=pk).update(username=normalised)
    clashes = [names for names in seen.values() if len(names) > 1]
    if clashes:
        listed = "; ".join(" and ".join(repr(name) for name in names) for names in clashes)
        raise RuntimeError(
            f"User names that are the same once normalised and compared without case: {listed}. "
            "Rename one of each (admin, or manage.py shell), then run manage.py migrate again."
        )


class Migration(migrations.Migration):

    dependencies = [
        ('itsm', '0018_recovery_drills'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.CreateModel(
            name='LoginThrottle',
            fields=[
                ('key', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('scope', models.CharField(choices=[('account_address', 'Account Address'), ('address', 'Address')], max_length=20)),
                ('failures', models.PositiveIntegerField(default=0)),
                ('last_attempt_at', models.DateTimeField()),
                ('blocked_until', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'indexes': [models.Index(fields=['last_attempt_at'], name='login_throttle_last_attempt')],
            },
        ),
        migrations.RunPython(normalise_usernames, migrations.RunPython.noop),
        # PostgreSQL's lower() folds every script; SQLite's only ASCII (the development database).
        migrations.RunSQL(
            f"CREATE UNIQUE INDEX {INDEX} ON auth_user (lower(username))",
            f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
