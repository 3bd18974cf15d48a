#!/bin/sh
# The `pgbackrest` service (docker-compose.yml; a sidecar of the postgres pod on Kubernetes): create the stanza
# once PostgreSQL answers (stanza-create is idempotent: on a repository that has it, it only checks it matches this
# cluster), then serve pgBackRest's TLS protocol so the workers can back this data directory up and check it.
#
#   PGBACKREST_CONFIG        the configuration (docker/postgres/pgbackrest.conf at /etc/pgbackrest/pgbackrest.conf)
#   PGBACKREST_STANZA        the stanza (itsm: the platform's BACKUP_PITR_STANZA)
#   PGHOST, PGPORT           where pg_isready finds PostgreSQL (the socket directory the two containers share)
#   PGBACKREST_WAIT_SECONDS  how long to wait for PostgreSQL on first start (600: initdb of a new volume)
set -eu

: "${PGBACKREST_STANZA:?set PGBACKREST_STANZA (the BACKUP_PITR_STANZA of the platform)}"
wait_seconds=${PGBACKREST_WAIT_SECONDS:-600}
waited=0
until pg_isready -q; do
    if [ "$waited" -ge "$wait_seconds" ]; then
        echo "pgbackrest-server.sh: PostgreSQL did not answer within ${wait_seconds}s" >&2
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done
pgbackrest stanza-create
echo "pgbackrest-server.sh: stanza $PGBACKREST_STANZA is ready; serving TLS"
exec pgbackrest server
