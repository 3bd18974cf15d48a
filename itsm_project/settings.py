"""Django settings for the ITSM platform, read from the environment only.

Every variable is listed in `.env.example` and explained in `docs/configuration.md`. With nothing set, the
platform runs on embedded defaults: SQLite in `var/`, a local-memory cache and Celery on kombu's
`filesystem://` transport in `var/`.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from itsm_project.env import env_bool, env_float, env_int, env_list, env_secret, env_secrets, env_str, parse_email_url
from itsm_project.sign_in import ldap_settings, mapping_from

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ITSM_VAR_DIR", str(BASE_DIR / "var")))
# Local state (beat schedule, embedded database and broker, generated key) lives here; a read-only image mounts
# a volume on it, so a failure to create it is left to whoever first writes there.
with contextlib.suppress(OSError):
    VAR_DIR.mkdir(parents=True, exist_ok=True)


def _generated_secret_key() -> str:
    """A per-checkout key for the embedded mode; production must set DJANGO_SECRET_KEY (check itsm.E001)."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# --- Core -----------------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
SECRET_KEY_GENERATED = not SECRET_KEY
if SECRET_KEY_GENERATED:
    SECRET_KEY = _generated_secret_key()
# The keys DJANGO_SECRET_KEY replaced, newest first: sessions, password-reset links and other signed values made
# with them stay valid while they are listed, so a new key signs nobody out (docs/runbooks/rotate-secrets.md).
SECRET_KEY_FALLBACKS = env_secrets("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# JSON, but an HTML page under /portal/ (itsm_project/errors.py).
CSRF_FAILURE_VIEW = "itsm_project.errors.csrf_failure"

INSTALLED_APPS = [
    "itsm.apps.DeskAdminConfig",  # django.contrib.admin with the desk's index (itsm/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_prometheus",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Second factors of staff (itsm/services/two_factor.py): TOTP apps and single-use recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "auditlog",
    "itsm",
]

MIDDLEWARE = [
    "itsm.middleware.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "itsm.middleware.ReadOnlyModeMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.otp_device: the device this session's sign-in was verified with (None without one).
    "django_otp.middleware.OTPMiddleware",
    # The audit trail's context: the request (its user read when a row is written, after DRF's token check).
    "itsm.middleware.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "itsm.middleware.DatabaseUnavailableMiddleware",
    "itsm.middleware.ReplicaWritesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "itsm_project.urls"
WSGI_APPLICATION = "itsm_project.wsgi.application"

# An operator's own templates (e.g. itsm/email/ticket.txt) in this folder win over the platform's.
ITSM_TEMPLATES_DIR = env_str("ITSM_TEMPLATES_DIR")
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [ITSM_TEMPLATES_DIR] if ITSM_TEMPLATES_DIR else [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "itsm.services.single_sign_on.sign_in_context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
DATABASE_URL = env_secret("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'itsm.sqlite3'}"
_database = dj_database_url.parse(
    DATABASE_URL,
    conn_max_age=env_int("ITSM_DB_CONN_MAX_AGE", 60),
    conn_health_checks=True,
)
DATABASE_IS_POSTGRES = _database["ENGINE"] == "django.db.backends.postgresql"
if DATABASE_IS_POSTGRES:
    _database["ENGINE"] = "django_prometheus.db.backends.postgresql"
    _database["OPTIONS"] = {
        "connect_timeout": env_int("ITSM_DB_CONNECT_TIMEOUT", 5),
        "options": f"-c statement_timeout={env_int('ITSM_DB_STATEMENT_TIMEOUT_MS', 30000)}",
    }
elif _database["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _database["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    # The API, the worker and beat share the file: WAL lets readers go on while one process writes.
    _database["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Behind PgBouncer in transaction pooling: no server-side cursors (a cursor outlives its transaction) and no
# startup `options` (PgBouncer refuses them; its connect_query sets the statement timeout). Session-level work
# (advisory locks, VACUUM, pg_dump) connects past it to ITSM_DIRECT_DATABASE_URL (itsm/databases.py).
ITSM_DB_TRANSACTION_POOLING = env_bool("ITSM_DB_TRANSACTION_POOLING", False)
if ITSM_DB_TRANSACTION_POOLING and DATABASE_IS_POSTGRES:
    _database["DISABLE_SERVER_SIDE_CURSORS"] = True
    _database["OPTIONS"].pop("options", None)
ITSM_DIRECT_DATABASE_URL = env_secret("ITSM_DIRECT_DATABASE_URL")
ITSM_DIRECT_DATABASE = (
    {
        name: value
        for name, value in dj_database_url.parse(ITSM_DIRECT_DATABASE_URL).items()
        if name in {"HOST", "PORT", "USER", "PASSWORD"} and value
    }
    if ITSM_DIRECT_DATABASE_URL
    else {}
)
DATABASES = {"default": _database}
# A streaming replica (hot standby) for the reads that tolerate a little lag (itsm/replica.py); unset, none.
ITSM_REPLICA_DATABASE_URL = env_secret("ITSM_REPLICA_DATABASE_URL")
if ITSM_REPLICA_DATABASE_URL:
    DATABASES["replica"] = {
        **dj_database_url.parse(
            ITSM_REPLICA_DATABASE_URL, conn_max_age=_database["CONN_MAX_AGE"], conn_health_checks=True
        ),
        "ENGINE": _database["ENGINE"],
        # A replica that does not answer must cost a read little: the primary serves it then.
        "OPTIONS": {**_database.get("OPTIONS", {}), "connect_timeout": env_int("ITSM_REPLICA_CONNECT_TIMEOUT", 2)},
        # The test suite's database has no replica: the alias reads the test database itself.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["itsm.replica.ReplicaRouter"]
# A replica more than this many seconds behind is not read from (the manual's alert fires well before).
ITSM_REPLICA_MAX_LAG_SECONDS = env_float("ITSM_REPLICA_MAX_LAG_SECONDS", 5.0)
# How often each process probes the replica's state (a query on the replica).
ITSM_REPLICA_CHECK_SECONDS = env_float("ITSM_REPLICA_CHECK_SECONDS", 2.0)
# How long after a write a client's reads wait for the replica to replay it before the primary serves them anyway.
ITSM_REPLICA_READ_YOUR_WRITES_SECONDS = env_int("ITSM_REPLICA_READ_YOUR_WRITES_SECONDS", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------------------
REDIS_URL = env_secret("REDIS_URL")
_redis_timeout = env_float("ITSM_REDIS_TIMEOUT", 0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "itsm",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # The cache is not critical: with Redis down or frozen, calls fail fast and are ignored.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": _redis_timeout,
                "SOCKET_TIMEOUT": _redis_timeout,
                # After a failure, skip Redis for a few seconds instead of waiting each call's timeout (itsm/cache.py).
                "CONNECTION_POOL_CLASS": "itsm.cache.FailFastConnectionPool",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "itsm"}}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True


def _redis_database(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, parts.fragment))


# --- Celery ---------------------------------------------------------------------------------------------
# The broker lives in its own Redis database (cache database + 1) so that a cache flush never drops tasks.
_cache_db = int(urlsplit(REDIS_URL).path.strip("/") or 0) if REDIS_URL else 0
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL") or (
    _redis_database(REDIS_URL, _cache_db + 1) if REDIS_URL else "filesystem://"
)
CELERY_BROKER_IS_FILESYSTEM = CELERY_BROKER_URL.startswith("filesystem")
_visibility_timeout = env_int("ITSM_CELERY_VISIBILITY_TIMEOUT", 3600)
if CELERY_BROKER_IS_FILESYSTEM:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility_timeout,
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Time limits stay below the visibility timeout, or Redis would hand a running task to a second worker.
CELERY_TASK_TIME_LIMIT = env_int("ITSM_CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
# The worker serves its pool's metrics (PROMETHEUS_MULTIPROC_DIR) on this port; 0 serves nothing.
ITSM_CELERY_METRICS_PORT = env_int("ITSM_CELERY_METRICS_PORT", 0)
# Beat serves its scheduler heartbeat (itsm.beat, the rule BeatDown) on this port; 0 serves nothing.
ITSM_BEAT_METRICS_PORT = env_int("ITSM_BEAT_METRICS_PORT", 0)
CELERY_BEAT_SCHEDULER = "itsm.beat:HeartbeatScheduler"
# Beat ticks at least this often whatever its schedule, so its heartbeat is never older than this while it runs.
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
CELERY_VISIBILITY_TIMEOUT = _visibility_timeout
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

# --- Auth -----------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The requester portal's pages (itsm/portal/); the admin and the API sign in their own way.
LOGIN_URL = "portal:sign-in"
LOGIN_REDIRECT_URL = "portal:tickets"
LOGOUT_REDIRECT_URL = "portal:sign-in"
# --- Sign-in: local passwords, a directory (LDAP / AD), OpenID Connect (docs/security.md) -----------------------
# Off: passwords stored in the platform's database are refused everywhere (admin, portal, API token); directory
# and single sign-on accounts still sign in. The forms stay while a directory is configured.
ITSM_LOCAL_LOGIN = env_bool("ITSM_LOCAL_LOGIN", True)
ITSM_LDAP_SERVER_URI = env_str("ITSM_LDAP_SERVER_URI")
ITSM_OIDC_ISSUER = env_str("ITSM_OIDC_ISSUER").rstrip("/")
AUTHENTICATION_BACKENDS = [
    *(["itsm.services.directory.DirectoryBackend"] if ITSM_LDAP_SERVER_URI else []),
    *(["itsm.services.single_sign_on.SingleSignOnBackend"] if ITSM_OIDC_ISSUER else []),
    # User names are matched once normalised (NFKC), in any case: `Agent` signs in as `agent` (itsm/sign_in.py).
    *(["itsm.sign_in.UsernameBackend"] if ITSM_LOCAL_LOGIN else []),
]
if ITSM_LDAP_SERVER_URI:
    globals().update(
        ldap_settings(
            server_uri=ITSM_LDAP_SERVER_URI,
            bind_dn=env_str("ITSM_LDAP_BIND_DN"),
            bind_password=env_secret("ITSM_LDAP_BIND_PASSWORD"),
            user_search_base=env_str("ITSM_LDAP_USER_SEARCH_BASE"),
            user_search_filter=env_str("ITSM_LDAP_USER_SEARCH_FILTER", "(uid=%(user)s)"),
            group_search_base=env_str("ITSM_LDAP_GROUP_SEARCH_BASE"),
            group_type=env_str("ITSM_LDAP_GROUP_TYPE", "groupOfNames"),
            start_tls=env_bool("ITSM_LDAP_START_TLS", False),
            ca_file=env_str("ITSM_LDAP_CA_FILE"),
            timeout=env_int("ITSM_LDAP_TIMEOUT_SECONDS", 10),
        )
    )
# The directory groups (full DNs) that make an agent or an admin; everyone else who signs in is a requester.
ITSM_LDAP_AGENT_GROUP = env_str("ITSM_LDAP_AGENT_GROUP")
ITSM_LDAP_ADMIN_GROUP = env_str("ITSM_LDAP_ADMIN_GROUP")
# team-slug=group DN pairs, separated by ";" (DNs hold commas): network=cn=network,ou=groups,dc=example,dc=org
ITSM_LDAP_TEAM_GROUPS = mapping_from("ITSM_LDAP_TEAM_GROUPS", env_str("ITSM_LDAP_TEAM_GROUPS"))
# OpenID Connect (mozilla-django-oidc, itsm/services/single_sign_on.py): off when ITSM_OIDC_ISSUER is unset.
ITSM_OIDC_PROVIDER_NAME = env_str("ITSM_OIDC_PROVIDER_NAME", "single sign-on")
ITSM_OIDC_TIMEOUT_SECONDS = env_int("ITSM_OIDC_TIMEOUT_SECONDS", 10)
ITSM_OIDC_USERNAME_CLAIM = env_str("ITSM_OIDC_USERNAME_CLAIM", "preferred_username")
ITSM_OIDC_GROUPS_CLAIM = env_str("ITSM_OIDC_GROUPS_CLAIM", "groups")
ITSM_OIDC_AGENT_GROUP = env_str("ITSM_OIDC_AGENT_GROUP")
ITSM_OIDC_ADMIN_GROUP = env_str("ITSM_OIDC_ADMIN_GROUP")
ITSM_OIDC_TEAM_GROUPS = mapping_from("ITSM_OIDC_TEAM_GROUPS", env_str("ITSM_OIDC_TEAM_GROUPS"))
OIDC_RP_CLIENT_ID = env_str("ITSM_OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_secret("ITSM_OIDC_CLIENT_SECRET")
OIDC_RP_SCOPES = env_str("ITSM_OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = env_str("ITSM_OIDC_SIGN_ALGORITHM", "RS256")
if ITSM_OIDC_ISSUER and not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
    raise ImproperlyConfigured("ITSM_OIDC_ISSUER is set: set ITSM_OIDC_CLIENT_ID and ITSM_OIDC_CLIENT_SECRET too.")
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = True  # the id_token_hint of the provider's logout
OIDC_OP_LOGOUT_URL_METHOD = "itsm.services.single_sign_on.logout_url"
OIDC_TIMEOUT = ITSM_OIDC_TIMEOUT_SECONDS
LOGIN_REDIRECT_URL_FAILURE = "portal:sign-in"
# Second factors (itsm/services/two_factor.py, docs/security.md#two-factors). On: an admin without a confirmed
# authenticator is sent to /admin/2fa/ from every admin page and gets no API token until they set one up. Off
# by default for `make run`; the image, compose and k8s turn it on, and `check --deploy` warns when off (itsm.W004).
ITSM_REQUIRE_2FA_FOR_ADMINS = env_bool("ITSM_REQUIRE_2FA_FOR_ADMINS", False)
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = env_str("ITSM_2FA_ISSUER", "ITSM Platform")
# Wrong codes are counted in the sign-in buckets (itsm/services/logins.py) with the passwords; django-otp's own
# per-device wait would let a stranger who knows the password hold the owner's codes back.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0

REST_KNOX = {
    # Sliding: every use moves the expiry this far ahead (at most one write a minute) ...
    "TOKEN_TTL": timedelta(hours=env_int("ITSM_TOKEN_TTL_HOURS", 10)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": True,
    # ... but never past this long after the token was created, however often it is used.
    "AUTO_REFRESH_MAX_TTL": timedelta(hours=env_int("ITSM_TOKEN_MAX_AGE_HOURS", 24)),
    "TOKEN_LIMIT_PER_USER": None,
}

# --- REST framework and OpenAPI --------------------------------------------------------------------------
# Integration tokens (itsm.models.integrations) expire after at most this many days; 90 when not said otherwise.
ITSM_INTEGRATION_TOKEN_MAX_DAYS = env_int("ITSM_INTEGRATION_TOKEN_MAX_DAYS", 365)
ITSM_PAGE_SIZE = env_int("ITSM_PAGE_SIZE", 25)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # knox's hashed, expiring tokens, read with the user and the role in one query (itsm/api/authentication.py)
        "itsm.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "itsm.api.pagination.Pagination",
    "PAGE_SIZE": ITSM_PAGE_SIZE,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "itsm.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's, bounded: nesting and non-finite numbers are a 400 (itsm/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["itsm.api.parsers.JSONParser"],
    # Behind N trusted proxies the client address is the Nth from the right of X-Forwarded-For;
    # with 0 (the default) X-Forwarded-For is ignored, so a client cannot pick its own throttle bucket.
    "NUM_PROXIES": env_int("ITSM_NUM_PROXIES", 0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
ITSM_MAX_PAGE_SIZE = env_int("ITSM_MAX_PAGE_SIZE", 200)
# Failed sign-ins (itsm/services/logins.py), counted in the database for an account from one address and for one
# address over all accounts; past a limit, waits from ITSM_LOGIN_BACKOFF_SECONDS doubling with each failure.
ITSM_LOGIN_FAILURES_PER_ACCOUNT = env_int("ITSM_LOGIN_FAILURES_PER_ACCOUNT", 5)
ITSM_LOGIN_FAILURES_PER_ADDRESS = env_int("ITSM_LOGIN_FAILURES_PER_ADDRESS", 20)
ITSM_LOGIN_FAILURE_WINDOW_SECONDS = env_int("ITSM_LOGIN_FAILURE_WINDOW_SECONDS", 900)
ITSM_LOGIN_BACKOFF_SECONDS = env_int("ITSM_LOGIN_BACKOFF_SECONDS", 60)
ITSM_LOGIN_BACKOFF_MAX_SECONDS = env_int("ITSM_LOGIN_BACKOFF_MAX_SECONDS", 3600)
# Password-reset requests (itsm/portal/accounts.py), counted the same way per client address and per e-mail
# address asked for; past a limit no mail is sent, and the page says the same as for every request.
ITSM_PASSWORD_RESETS_PER_ADDRESS = env_int("ITSM_PASSWORD_RESETS_PER_ADDRESS", 10)
ITSM_PASSWORD_RESETS_PER_EMAIL = env_int("ITSM_PASSWORD_RESETS_PER_EMAIL", 3)
# How long a POST's Idempotency-Key is remembered (its response replayed) before the daily cleanup forgets it.
ITSM_IDEMPOTENCY_KEY_TTL_HOURS = env_int("ITSM_IDEMPOTENCY_KEY_TTL_HOURS", 24)

SPECTACULAR_SETTINGS = {
    "TITLE": "ITSM Platform API",
    "DESCRIPTION": "Service desk tickets with SLAs, incidents, maintenance windows and operations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package: /api/docs/ works without reaching a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        # Many models have a "status" or "kind": each choice set gets its model's name in the schema.
        "TicketStatusEnum": "itsm.models.tickets.Ticket.Status",
        "IncidentStatusEnum": "itsm.models.incidents.Incident.Status",
        "PostmortemStatusEnum": "itsm.models.incidents.Postmortem.Status",
        "AlertStatusEnum": "itsm.models.alerts.Alert.Status",
        "BackupStatusEnum": "itsm.models.backups.Backup.Status",
        "BackupKindEnum": "itsm.models.backups.Backup.Kind",
        "NotificationStatusEnum": "itsm.models.notifications.Notification.Status",
        "WebhookKindEnum": "itsm.models.notifications.WebhookEndpoint.Kind",
        "EventKindEnum": "itsm.models.events.Event.Kind",
        "MaintenanceWindowStatusEnum": "itsm.models.maintenance.MaintenanceWindow.Status",
        # Ticket priorities and incident severities share one scale: critical, high, medium, low.
        "LevelEnum": "itsm.models.incidents.Incident.Severity",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "itsm.api.schema.document_error_responses",
        "itsm.api.schema.document_empty_query_values",
        "itsm.api.schema.document_public_views",
    ],
}

# --- Product settings ------------------------------------------------------------------------------------
ITSM_SLA_AT_RISK_PERCENT = env_int("ITSM_SLA_AT_RISK_PERCENT", 80)
ITSM_CLEANUP_RETENTION_DAYS = env_int("ITSM_CLEANUP_RETENTION_DAYS", 30)
# Days the daily cleanup keeps each kind of record (docs/operations.md#scheduled-jobs); tokens and sessions count
# from their expiry, so by default they go as soon as they have expired.
ITSM_RETENTION_DAYS = {
    "alerts": env_int("ITSM_RETENTION_DAYS_ALERTS", ITSM_CLEANUP_RETENTION_DAYS),
    "notifications": env_int("ITSM_RETENTION_DAYS_NOTIFICATIONS", ITSM_CLEANUP_RETENTION_DAYS),
    "job_runs": env_int("ITSM_RETENTION_DAYS_JOB_RUNS", ITSM_CLEANUP_RETENTION_DAYS),
    "tokens": env_int("ITSM_RETENTION_DAYS_TOKENS", 0),
    "sessions": env_int("ITSM_RETENTION_DAYS_SESSIONS", 0),
}
# The audit trail (django-auditlog, itsm/audit.py, docs/security.md#audit-trail): changes as JSON values, the
# request id as the correlation id, the client address set by itsm.audit (the trusted one), kept this many days.
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_CID_GETTER = "itsm.log_context.current_request_id"
ITSM_AUDIT_RETENTION_DAYS = env_int("ITSM_AUDIT_RETENTION_DAYS", 730)
# The dead-man switch: how late a scheduled job's run may start before the job counts as missed (at least the
# `expires` of its Beat entry).
ITSM_JOB_GRACE_SECONDS = env_int("ITSM_JOB_GRACE_SECONDS", 300)
# Alertmanager's webhook authenticates with this bearer token; unset, the intake refuses every delivery.
ITSM_ALERTMANAGER_TOKEN = env_secret("ITSM_ALERTMANAGER_TOKEN")
# Tokens it replaced, still accepted while Alertmanager is moved to the new one (docs/runbooks/rotate-secrets.md).
ITSM_ALERTMANAGER_TOKEN_FALLBACKS = env_secrets("ITSM_ALERTMANAGER_TOKEN_FALLBACKS")
# GET /metrics wants `Authorization: Bearer <ITSM_METRICS_TOKEN>`. Unset: only loopback callers get /metrics
# (`make run`); `check --deploy` refuses it (itsm.E026).
ITSM_METRICS_TOKEN = env_secret("ITSM_METRICS_TOKEN")
# Tokens it replaced, still accepted while Prometheus is moved to the new one (docs/runbooks/rotate-secrets.md).
ITSM_METRICS_TOKEN_FALLBACKS = env_secrets("ITSM_METRICS_TOKEN_FALLBACKS")
# Secrets of the services around the platform, which compose's .env hands to the app too: `check --deploy`
# refuses their placeholders (itsm.E005).
ITSM_DEPLOYMENT_SECRETS = {
    name: env_str(name)
    for name in (
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "ALERTMANAGER_SMTP_PASSWORD",
        "ALERTMANAGER_PAGER_TOKEN",
        "ALERTMANAGER_PAGER_URL",
        "ALERTMANAGER_DEADMAN_URL",
        # docker compose's pgBackRest repository (docker/postgres/, the `pgbackrest` service).
        "BACKUP_PITR_S3_BUCKET",
        "BACKUP_PITR_S3_KEY",
        "BACKUP_PITR_S3_KEY_SECRET",
        "PGBACKREST_CIPHER_PASS",
    )
}
# How many times an unacknowledged incident walks its whole escalation chain before paging stops.
ITSM_ESCALATION_ROUNDS = env_int("ITSM_ESCALATION_ROUNDS", 3)
# Maintenance windows silence the affected services' alerts here (Alertmanager's v2 API); unset, no silences.
ALERTMANAGER_URL = env_str("ALERTMANAGER_URL").rstrip("/")
# Maintenance windows' PromQL checks query this Prometheus (its HTTP API) after the maintenance.
PROMETHEUS_URL = env_str("PROMETHEUS_URL").rstrip("/")
# A maintenance window's api_health check calls this over HTTP from the worker, the way users reach the API (in
# compose through Nginx): only a 200 whose JSON says {"status": "ok"} passes.
ITSM_API_HEALTH_URL = env_str("ITSM_API_HEALTH_URL", "http://127.0.0.1:8000/health/")
# How long a new maintenance window's checks keep running after the maintenance, unless the window says.
ITSM_MAINTENANCE_VERIFY_MINUTES = env_int("ITSM_MAINTENANCE_VERIFY_MINUTES", 5)

# --- Backups (docs/runbooks/backup-restore.md) ---------------------------------------------------------------
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(VAR_DIR / "backups")))
# S3 (or any S3-compatible store) is used when a bucket is set; without keys boto3's own chain applies.
BACKUP_S3_BUCKET = env_str("BACKUP_S3_BUCKET")
BACKUP_S3_PREFIX = env_str("BACKUP_S3_PREFIX", "itsm/")
BACKUP_S3_ENDPOINT_URL = env_str("BACKUP_S3_ENDPOINT_URL")
BACKUP_S3_REGION = env_str("BACKUP_S3_REGION", "us-east-1")
BACKUP_S3_ACCESS_KEY_ID = env_secret("BACKUP_S3_ACCESS_KEY_ID")
BACKUP_S3_SECRET_ACCESS_KEY = env_secret("BACKUP_S3_SECRET_ACCESS_KEY")
BACKUP_S3_STORAGE_CLASS = env_str("BACKUP_S3_STORAGE_CLASS", "STANDARD")
BACKUP_S3_MONTHLY_STORAGE_CLASS = env_str("BACKUP_S3_MONTHLY_STORAGE_CLASS", "GLACIER")
BACKUP_S3_PART_SIZE_MB = env_int("BACKUP_S3_PART_SIZE_MB", 64)
BACKUP_UPLOAD_RETRIES = env_int("BACKUP_UPLOAD_RETRIES", 5)
BACKUP_UPLOAD_RETRY_DELAY_SECONDS = env_int("BACKUP_UPLOAD_RETRY_DELAY_SECONDS", 60)
# The Redis whose RDB snapshot is backed up: the broker's (queued tasks) unless set.
BACKUP_REDIS_URL = env_secret("BACKUP_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else REDIS_URL
)
# Directory of pg_dump and pg_restore when the ones on PATH are older than the server.
BACKUP_PG_BIN_DIR = env_str("BACKUP_PG_BIN_DIR")
BACKUP_RESTORE_JOBS = env_int("BACKUP_RESTORE_JOBS", 1)
# Archives (database dumps, Redis snapshots, media) are encrypted at rest, on disk and in S3, to this age key
# (AGE-SECRET-KEY-1…, from `manage.py backup_key`); `check --deploy` refuses production without one (itsm.E025).
BACKUP_ENCRYPTION_KEY = env_secret("BACKUP_ENCRYPTION_KEY")
# After a rotation: the earlier keys, which still decrypt the archives taken with them (commas or one a line).
BACKUP_ENCRYPTION_KEY_FALLBACKS = env_secret("BACKUP_ENCRYPTION_KEY_FALLBACKS").replace(",", " ").split()

# --- Point-in-time recovery with pgBackRest (docs/runbooks/backup-restore.md#point-in-time-recovery) ----------
# The stanza of pgbackrest.conf that archives the platform's cluster; unset: no WAL archiving, PITR jobs skip.
BACKUP_PITR_STANZA = env_str("BACKUP_PITR_STANZA")
BACKUP_PITR_CONFIG = env_str("BACKUP_PITR_CONFIG", "/etc/pgbackrest/pgbackrest.conf")
BACKUP_PITR_BIN = env_str("BACKUP_PITR_BIN", "pgbackrest")
# pgBackRest and a restored PostgreSQL run as this OS user (the server's, who owns the repository) when the
# platform runs as root; unset: as the platform's own user.
BACKUP_PITR_OS_USER = env_str("BACKUP_PITR_OS_USER")
# The archived cluster as the drill writes its two marker rows to it and reads pg_stat_archiver: DATABASE_URL.
BACKUP_PITR_DATABASE_URL = env_secret("BACKUP_PITR_DATABASE_URL")
# New data directories of `restore --to-time` and of the drill's throw-away clusters.
BACKUP_PITR_RESTORE_DIR = Path(env_str("BACKUP_PITR_RESTORE_DIR", str(VAR_DIR / "pitr")))
# How long the drill waits for its marker's WAL segment to be archived (archive_timeout is 30 s).
BACKUP_PITR_DRILL_WAIT_SECONDS = env_int("BACKUP_PITR_DRILL_WAIT_SECONDS", 300)
# The longest a restore (files and WAL replay) may take before it is given up.
BACKUP_PITR_RESTORE_TIMEOUT_SECONDS = env_int("BACKUP_PITR_RESTORE_TIMEOUT_SECONDS", 3600)

# --- Security (production sets ITSM_HTTPS=true behind a TLS-terminating proxy) ---------------------------
ITSM_HTTPS = env_bool("ITSM_HTTPS", False)
# Content-Security-Policy on every response (django-csp): the admin, the portal, the desk and the status page load
# their scripts and styles from this origin only; no inline script runs. The one inline style is the admin
# change list's (Django's admin/change_list.html, for lists without actions), allowed by its hash. Browser tests
# fail on any console message, a refused script or style among them (docs/security.md#headers).
ITSM_CSP_ADMIN_CHANGELIST_STYLE = "'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", ITSM_CSP_ADMIN_CHANGELIST_STYLE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if ITSM_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Probes, scrapers and Alertmanager's webhook talk plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$", r"^api/v1/alerts/alertmanager/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("ITSM_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("ITSM_HSTS_PRELOAD", True)

# --- Internationalisation and static files -----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("ITSM_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("ITSM_MEDIA_ROOT", str(VAR_DIR / "media")))

# --- Attachments (itsm/services/attachments.py) -------------------------------------------------------------
ITSM_ATTACHMENT_MAX_BYTES = env_int("ITSM_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
# Empty: every type that is not denied. Entries are types (`application/pdf`) or families (`image/*`).
ITSM_ATTACHMENT_ALLOWED_TYPES = env_list("ITSM_ATTACHMENT_ALLOWED_TYPES")
# Refused whatever the allowed list says, whether the content, the client's claim or the file name says so:
# executables and scripts a desktop runs, and markup a browser runs (HTML, SVG, XML, JavaScript).
ITSM_ATTACHMENT_DENIED_TYPES = env_list(
    "ITSM_ATTACHMENT_DENIED_TYPES",
    [
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "application/x-mimearchive",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/x-msdownload",
        "application/x-dosexec",
        "application/vnd.microsoft.portable-executable",
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-mach-binary",
        "application/x-msi",
        "application/x-bat",
        "application/x-sh",
        "application/x-shellscript",
        "application/x-powershell",
        "application/x-vbscript",
        "application/hta",
        "application/x-ms-shortcut",
        "application/java-archive",
        "application/x-java-archive",
    ],
)
# Where attachments are stored: `local` (MEDIA_ROOT, in the media backup) or `s3` (any S3-compatible store).
ITSM_ATTACHMENT_STORAGE = env_str("ITSM_ATTACHMENT_STORAGE", "local")
ITSM_ATTACHMENT_S3_BUCKET = env_str("ITSM_ATTACHMENT_S3_BUCKET")
ITSM_ATTACHMENT_S3_ENDPOINT_URL = env_str("ITSM_ATTACHMENT_S3_ENDPOINT_URL")
ITSM_ATTACHMENT_S3_REGION = env_str("ITSM_ATTACHMENT_S3_REGION", "us-east-1")
if ITSM_ATTACHMENT_STORAGE == "s3":
    if not ITSM_ATTACHMENT_S3_BUCKET:
        raise ImproperlyConfigured("ITSM_ATTACHMENT_STORAGE=s3 needs ITSM_ATTACHMENT_S3_BUCKET.")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ITSM_ATTACHMENT_S3_BUCKET,
            "endpoint_url": ITSM_ATTACHMENT_S3_ENDPOINT_URL or None,
            "region_name": ITSM_ATTACHMENT_S3_REGION,
            # Unset: boto3's own chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, an instance or pod role).
            "access_key": env_secret("ITSM_ATTACHMENT_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_secret("ITSM_ATTACHMENT_S3_SECRET_ACCESS_KEY") or None,
            # Names are random; a clash must never replace another attachment's bytes.
            "file_overwrite": False,
            # No ACL header: objects stay as private as the bucket (AWS's default ownership refuses ACLs), and
            # downloads go through the API's visibility check, never to the bucket.
            "default_acl": None,
        },
    }
elif ITSM_ATTACHMENT_STORAGE != "local":
    raise ImproperlyConfigured(f"ITSM_ATTACHMENT_STORAGE={ITSM_ATTACHMENT_STORAGE!r}: use local or s3.")
# A multipart body larger than an attachment may be (plus room for the form around it) is refused with a JSON 413
# before it is read (itsm/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "itsm.uploads.UploadSizeLimit",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- E-mail -------------------------------------------------------------------------------------------------
# One URL sets the backend, host, port, credentials and TLS: smtp://user:pass@host:587/?tls=true, console://, ...
_email = parse_email_url("EMAIL_URL", env_secret("EMAIL_URL") or "console://")
EMAIL_BACKEND = str(_email["EMAIL_BACKEND"])
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"]
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH")
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("ITSM_DEFAULT_FROM_EMAIL", "itsm@localhost")

# --- Notifications (itsm/services/notifications.py) -------------------------------------------------------------
ITSM_NOTIFICATION_MAX_ATTEMPTS = env_int("ITSM_NOTIFICATION_MAX_ATTEMPTS", 5)
# Backoff after a failed attempt: this many seconds, doubled after each further failure (at most an hour).
ITSM_NOTIFICATION_RETRY_SECONDS = env_int("ITSM_NOTIFICATION_RETRY_SECONDS", 60)
ITSM_WEBHOOK_TIMEOUT_SECONDS = env_float("ITSM_WEBHOOK_TIMEOUT_SECONDS", 5.0)
# Webhooks to loopback, private and link-local addresses are refused (SSRF) unless this is true.
ITSM_WEBHOOK_ALLOW_PRIVATE = env_bool("ITSM_WEBHOOK_ALLOW_PRIVATE", False)

# --- Mail in and ticket e-mail (itsm/services/mail.py, itsm/services/ticket_notifications.py, docs/email.md) -------
# The simple case of one mailbox: imaps://user:password@host:993/INBOX (imap:// for STARTTLS, or plain on loopback).
# More mailboxes are configured in the admin. Unset (and no mailbox in the admin): mail intake is off.
ITSM_MAIL_INBOX_URL = env_secret("ITSM_MAIL_INBOX_URL")
# The client secret of ITSM_MAIL_INBOX_URL when it signs in with OAuth2 (?auth=oauth2&token_url=…&client_id=…).
ITSM_MAIL_OAUTH2_CLIENT_SECRET = env_secret("ITSM_MAIL_OAUTH2_CLIENT_SECRET")
# Mail from an address no user has opens a ticket as a new requester account; off: it is logged as refused.
ITSM_MAIL_ACCEPT_UNKNOWN_SENDERS = env_bool("ITSM_MAIL_ACCEPT_UNKNOWN_SENDERS", True)
# At most this many new tickets per sender per hour; more are refused (a loop or a flood).
ITSM_MAIL_MAX_TICKETS_PER_SENDER_PER_HOUR = env_int("ITSM_MAIL_MAX_TICKETS_PER_SENDER_PER_HOUR", 20)
# A larger message is not read (it is kept, cut to the next size, and marked failed).
ITSM_MAIL_MAX_BYTES = env_int("ITSM_MAIL_MAX_BYTES", 25 * 1024 * 1024)
# How much of each received message is kept with it for audit and retries.
ITSM_MAIL_KEEP_RAW_BYTES = env_int("ITSM_MAIL_KEEP_RAW_BYTES", 5 * 1024 * 1024)
# Messages read per mailbox and poll; the rest wait for the next minute.
ITSM_MAIL_POLL_BATCH = env_int("ITSM_MAIL_POLL_BATCH", 200)
# The domain of the Message-IDs the platform writes (default: the domain of ITSM_DEFAULT_FROM_EMAIL).
ITSM_MAIL_DOMAIN = env_str("ITSM_MAIL_DOMAIN") or DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
# Where people open a ticket in a browser, for links in e-mail (no trailing slash).
ITSM_PUBLIC_URL = env_str("ITSM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Days a one-click satisfaction link of a resolution e-mail stays valid (itsm.services.satisfaction).
ITSM_RATING_LINK_DAYS = env_int("ITSM_RATING_LINK_DAYS", 30)

# --- Metrics ----------------------------------------------------------------------------------------------
# In multiprocess mode (several gunicorn workers, Celery) prometheus_client needs the directory to exist
# before the first metric is defined.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# --- Logging ------------------------------------------------------------------------------------------------
# `json`: one JSON object per line on stdout (production, compose); `plain`: text for a terminal (`make run`).
ITSM_LOG_FORMAT = env_str("ITSM_LOG_FORMAT", "json").strip().lower()
if ITSM_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"ITSM_LOG_FORMAT={ITSM_LOG_FORMAT!r}: use json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"()": "itsm.log_context.JsonFormatter"}
        if ITSM_LOG_FORMAT == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(process_kind)s %(request_id)s] %(message)s"}
    },
    # Request id, task and process kind on every record (docs/operations.md#logs).
    "filters": {"context": {"()": "itsm.log_context.ContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "console",
            "filters": ["context"],
        },
        # itsm_log_errors_total{process}: the ErrorLogsRising alert (docs/monitoring.md).
        "error_counter": {"class": "itsm.log_metrics.ErrorCountingHandler", "level": "ERROR"},
    },
    "root": {"handlers": ["console", "error_counter"], "level": env_str("ITSM_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
