#!/bin/sh
# Entry point of the ITSM image. The first argument picks the role; any other command runs as given, so
# `docker compose run --rm backend python manage.py shell` and `... bash` work too.
#
#   backend              compose: deploy checks, migrations (one replica at a time), static files to the
#                        shared volume, then gunicorn
#   api                  Kubernetes: deploy checks, wait until the itsm-migrate Job has applied this image's
#                        migrations, then gunicorn (so `kubectl set image` alone never serves new code on an
#                        old schema: the rollout waits, the old pods keep serving)
#   migrate              deploy checks, then migrations (the Kubernetes Job)
#   worker               deploy checks, wait for migrations, then a Celery worker on every queue; extra
#                        arguments go to celery (--concurrency 2)
#   beat                 deploy checks, wait for migrations, then Celery Beat: exactly one per installation
#   pgbouncer            PgBouncer in transaction pooling in front of ITSM_DIRECT_DATABASE_URL (docker/pgbouncer.py)
set -eu

# The same queues as itsm_project/celery.py and scripts/run_platform.py (tests/deploy checks they agree).
QUEUES="critical,notifications,backups,default"

deploy_checks() {
    # Refuses to start on a production mistake (itsm.E001-E009: no secret key, SQLite, no Redis, a change-me
    # placeholder, no e-mail, no Alertmanager token or URL...).
    python manage.py check --deploy --fail-level ERROR
}

wait_for_migrations() {
    until python manage.py migrate --check >/dev/null; do
        echo "waiting for the migrations of this release to be applied (the itsm-migrate Job)" >&2
        sleep 5
    done
}

publish_static_files() {
    # docker compose mounts the `static` volume here, and Nginx serves it under /static/.
    if [ -d /srv/static ] && [ -w /srv/static ]; then
        cp -R "${ITSM_STATIC_ROOT:-/app/staticfiles}/." /srv/static/
    fi
}

role="${1:-backend}"
[ "$#" -gt 0 ] && shift

case "$role" in
    backend)
        deploy_checks
        python docker/migrate.py
        publish_static_files
        exec gunicorn itsm_project.wsgi -c gunicorn.conf.py "$@"
        ;;
    api)
        deploy_checks
        wait_for_migrations
        exec gunicorn itsm_project.wsgi -c gunicorn.conf.py "$@"
        ;;
    migrate)
        deploy_checks
        exec python docker/migrate.py "$@"
        ;;
    worker)
        deploy_checks
        wait_for_migrations
        exec celery -A itsm_project worker --loglevel "${ITSM_LOG_LEVEL:-INFO}" -Q "$QUEUES" \
            --without-gossip --without-mingle "$@"
        ;;
    beat)
        deploy_checks
        wait_for_migrations
        # Beat keeps its schedule file there (celerybeat-schedule).
        mkdir -p "${ITSM_VAR_DIR:-/var/lib/itsm}"
        exec celery -A itsm_project beat --loglevel "${ITSM_LOG_LEVEL:-INFO}" "$@"
        ;;
    pgbouncer)
        exec python docker/pgbouncer.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
