#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory: the role the standby copies and
# streams from the primary with (docker/postgres/standby.sh), and the pg_hba.conf line that admits it to
# `replication`. Its password is REPLICATION_PASSWORD, else POSTGRES_PASSWORD (compose and Kubernetes give it that
# one: docs/operations.md#read-replica). The image's entrypoint sources this file (or runs it, when executable)
# while its temporary server listens on the socket only; the new pg_hba.conf line counts from the real start.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set password="${REPLICATION_PASSWORD:-$POSTGRES_PASSWORD}" <<'SQL'
CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD :'password';
SQL
printf '%s\n' 'host replication replicator all scram-sha-256' >> "$PGDATA/pg_hba.conf"
