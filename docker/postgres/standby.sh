#!/bin/sh
# A hot standby of the primary, made with PostgreSQL's own tools: on an empty data directory, copy the primary with
# `pg_basebackup -R -X stream` (-R writes standby.signal and primary_conninfo, so the server starts in recovery and
# streams from the primary); on a data directory that has a cluster already, change nothing. Then run the command
# given, if any (compose: the image's entrypoint and `postgres`; Kubernetes runs this as an init container, without
# one). docs/operations.md#read-replica.
#
#   PRIMARY_HOST, PRIMARY_PORT   the primary (postgres, 5432)
#   REPLICATION_USER             a role with REPLICATION (replicator: docker/postgres/initdb/02-replication.sh)
#   REPLICATION_PASSWORD         its password
#   PGDATA                       the standby's data directory (the image's /var/lib/postgresql/data)
#   STANDBY_WAIT_SECONDS         how long to wait for the primary to accept connections (300)
set -eu

data=${PGDATA:-/var/lib/postgresql/data}
host=${PRIMARY_HOST:-postgres}
port=${PRIMARY_PORT:-5432}
user=${REPLICATION_USER:-replicator}
wait_seconds=${STANDBY_WAIT_SECONDS:-300}

if [ -s "$data/PG_VERSION" ]; then
    echo "standby.sh: $data has a cluster already; starting it as it is"
else
    : "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD (the password of $user on the primary)}"
    PGPASSWORD=$REPLICATION_PASSWORD
    export PGPASSWORD
    # The primary may still be initialising (first start of the whole platform).
    waited=0
    until pg_isready -q -h "$host" -p "$port"; do
        if [ "$waited" -ge "$wait_seconds" ]; then
            echo "standby.sh: the primary $host:$port did not accept connections in $wait_seconds s" >&2
            exit 1
        fi
        sleep 2
        waited=$((waited + 2))
    done
    # On failure pg_basebackup removes what it wrote, so the next start copies again.
    pg_basebackup -h "$host" -p "$port" -U "$user" -D "$data" -R -X stream --checkpoint=fast --no-password
    chmod 700 "$data"
    echo "standby.sh: $data is a standby of $host:$port"
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
