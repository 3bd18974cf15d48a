# syntax=docker/dockerfile:1
# The ITSM platform image: API (gunicorn), Celery worker and Celery Beat, chosen by the first argument
# (docker/entrypoint.sh). Build: docker build -t ghcr.io/your-org/itsm-api:v2.1.0 .

# --- build: a virtualenv with the pinned requirements; compilers only here, for any package without a wheel.
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libpq-dev libldap2-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt

# --- runtime: no compilers; the PostgreSQL 15 client (pg_dump of the server's major version, for backups),
# redis-cli for the operators, redis-server, which loads a Redis backup into a scratch server on loopback to
# verify and restore it (itsm/backup/redis.py; Debian's redis-server is a link to redis-tools' redis-check-rdb),
# and PgBouncer for the `pgbouncer` role (docker/pgbouncer.py). pgBackRest and the PostgreSQL 15 server make the
# workers the repository host of point-in-time recovery (docker/pgbackrest.conf): they back the database up
# through the `pgbackrest` service's TLS server, and `restore --to-time` and the PITR drill restore into a data
# directory here and start it on loopback to replay WAL (itsm/backup/cluster.py). pgBackRest's TLS protocol needs
# the same version at both ends: Debian bookworm's 2.45-1, pinned in docker/postgres/Dockerfile too.
# OpenLDAP's and SASL's libraries: python-ldap (directory sign-in).
FROM python:3.11-slim-bookworm AS runtime

ARG PGBACKREST_VERSION=2.45-1

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=itsm_project.settings \
    ITSM_BIND_HOST=0.0.0.0 \
    PORT=8000 \
    ITSM_VAR_DIR=/var/lib/itsm \
    ITSM_MEDIA_ROOT=/var/lib/itsm/media \
    ITSM_STATIC_ROOT=/app/staticfiles \
    ITSM_REQUIRE_2FA_FOR_ADMINS=true \
    PROMETHEUS_MULTIPROC_DIR=/tmp/itsm-metrics \
    XDG_RUNTIME_DIR=/tmp

# No cluster is made on install: the image runs restored data directories only.
RUN mkdir -p /etc/postgresql-common \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 postgresql-15 redis-server redis-tools \
        pgbouncer "pgbackrest=${PGBACKREST_VERSION}" libldap-2.5-0 libsasl2-2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 itsm \
    && useradd --system --uid 10001 --gid itsm --home-dir /app --no-create-home --shell /usr/sbin/nologin itsm

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . /app
COPY docker/redis-cli /usr/local/bin/redis-cli

# Static files are collected at build time with a throwaway environment: no database or secret is needed.
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time-only ITSM_VAR_DIR=/tmp/build-var \
        python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build-var /tmp/itsm-metrics \
    && python -m compileall -q itsm itsm_project docker \
    && mkdir -p /var/lib/itsm/media /var/lib/itsm/backups /srv/static \
    && chown -R itsm:itsm /var/lib/itsm /srv/static

USER 10001:10001
EXPOSE 8000

# /health/ of this container's gunicorn (200 "ok" or "degraded"; 503 when the database is unreachable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 CMD ["python", "docker/healthcheck.py"]

ENTRYPOINT ["docker/entrypoint.sh"]
CMD ["backend"]
