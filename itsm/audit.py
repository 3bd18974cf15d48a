"""The audit trail (docs/security.md#audit-trail): which models django-auditlog records, and who, from where, each
recorded change comes from.

django-auditlog writes one row to `auditlog_logentry` per create, update and delete of a registered model (post_save,
pre_save and post_delete receivers), with the changed fields' values before and after as JSON. This module adds
what the library leaves to the project, in one place per source:

- HTTP: `itsm.middleware.AuditMiddleware` puts the request in the context; the actor is read from it when a row is
  written, so an API request, whose token DRF checks inside the view (after every middleware), is the token's user.
  The source is the site of the URL: `api`, `admin`, `portal`, else `web` (single sign-on, the status page).
- Celery: `task_prerun` sets the source `task` with the task's name; the actor of the context that sent the task
  (a request's user) travels in a message header, as the request id does (itsm.log_context).
- Mail: `itsm.services.mail.mail_receive` sets `mail`, the sender being the actor once known.
- Commands: anything written outside the three above is a command's (`manage.py` and its shell, a migration), with
  the command's name and the operating-system user who ran it.

The correlation id (`cid`) is the request id of the logs, which follows a request into its tasks. Writes that send
no signal (`QuerySet.update()`, `bulk_create()`, the keys a deletion sets to null) are recorded here too, as the
signals would have recorded them.
"""

from __future__ import annotations

import contextlib
import copy
import getpass
import sys
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from auditlog.cid import get_cid
from auditlog.context import auditlog_disabled
from auditlog.diff import model_instance_diff
from auditlog.models import DEFAULT_OBJECT_REPR, LogEntry
from auditlog.receivers import check_disable, log_update
from auditlog.registry import auditlog
from celery import signals
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import SET_NULL, ForeignKey, Model, QuerySet
from django.db.models.signals import pre_delete, pre_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.encoding import smart_str
from rest_framework.throttling import BaseThrottle

from itsm import models
from itsm.models.versioned import Versioned

SOURCES = ("api", "admin", "portal", "web", "command", "task", "mail")
# The first matching prefix names an HTTP request's source; any other path is `web`.
URL_SOURCES = (("/api/", "api"), ("/admin/", "admin"), ("/portal/", "portal"))
ACTOR_HEADER = "audit_actor"
HIDDEN = "(hidden)"
BEFORE = "_audit_before"
M = TypeVar("M", bound=Model)

# What is recorded, with the fields left out or hidden. Every model of the app is either here or in NOT_RECORDED
# (tests/audit/test_registration.py keeps it so): a new model needs a decision.
RECORDED: dict[type[Model], dict[str, Any]] = {
    models.Ticket: {"m2m_fields": ["watchers"]},
    models.Comment: {},
    models.Attachment: {},
    models.TicketRating: {},
    models.Incident: {},
    # Its last use is stamped at most once a minute by the token check (itsm.services.integrations): a heartbeat.
    models.IntegrationToken: {"mask_fields": ["digest"], "exclude_fields": ["last_used_at"]},
    models.Postmortem: {},
    # The scheduler's claims on a window (its pre-start gate, the minute its checks last ran): leases, not changes.
    models.MaintenanceWindow: {
        "m2m_fields": ["notify_users"],
        "exclude_fields": ["gate_started_at", "last_checked_at"],
    },
    models.Service: {},
    models.Team: {"m2m_fields": ["members"]},
    models.SlaPolicy: {},
    models.SlaPolicyScope: {},
    models.BusinessCalendar: {},
    models.Holiday: {},
    # What each evaluation (every minute) read and when: the evaluator's heartbeat. The state it moves is recorded.
    models.AlertRule: {"exclude_fields": ["last_value", "last_evaluated_at", "last_error"]},
    models.Rotation: {},
    models.RotationMember: {},
    models.Override: {},
    # How many times a run was started: a retry counter (the run's states and outcome are recorded).
    models.Backup: {"exclude_fields": ["attempts"]},
    models.RecoveryDrill: {},
    # The poller's read position and heartbeat, written by every poll (its settings and `enabled` are recorded).
    models.Mailbox: {"exclude_fields": ["uidvalidity", "last_uid", "last_polled_at", "last_success_at", "last_error"]},
    models.SuppressedAddress: {},
    models.NotificationPreference: {},
    # Signing secrets, and targets and URLs that may carry a token (a Slack webhook's URL is its credential): the
    # change is recorded, the values are not.
    models.NotificationChannel: {"mask_fields": ["secret", "target"]},
    models.WebhookEndpoint: {"mask_fields": ["secret", "url"]},
}
# Left out, each for a reason (also in docs/security.md#audit-trail).
NOT_RECORDED: dict[type[Model], str] = {
    models.Event: "the per-object timeline itself, append-only, written with the change it describes",
    models.IdempotencyKey: "a replay cache of API responses, one per write request, gone within hours",
    models.LoginThrottle: "failed sign-in counters, one write per attempt; not who changed what",
    models.JobRun: "one row per scheduled run (some every 30 s), itself the record of the run",
    models.JobWatch: "written by the dead-man switch from the Beat schedule, derived",
    models.Alert: "Alertmanager's alerts as received, rewritten by every repeat; the incident they open is recorded",
    models.Notification: "the outbox: one row per message sent, derived from the recorded change that caused it",
    models.DeliveryAttempt: "one row per delivery attempt of an outbox message",
    models.TicketNotice: "the ticket e-mail outbox, derived from the recorded ticket change",
    models.InboundMessage: "each e-mail read, with its raw bytes: the mail log itself; its tickets are recorded",
    models.ThreadMessageId: "Message-IDs of a ticket's mail thread, derived from the mail sent and received",
}
# The user: the password hash is never written, only that it changed; each sign-in's last_login is noise. Role and
# permission changes are the groups and permissions.
USER_OPTIONS: dict[str, Any] = {
    "exclude_fields": ["last_login"],
    "mask_fields": ["password"],
    "m2m_fields": ["groups", "user_permissions"],
}


@dataclass(frozen=True)
class Context:
    """Who and what the rows written now come from. `request`: the user is read from it when a row is written."""

    source: str | None = None
    detail: str = ""
    request: HttpRequest | None = None
    actor: Any = None
    actor_id: int | None = None
    actor_email: str | None = None


current: ContextVar[Context] = ContextVar("audit_context", default=Context())  # noqa: B039  # frozen, never mutated


def register_models() -> None:
    """Register RECORDED and the user model with django-auditlog (AppConfig.ready), updates through
    `_log_update` (what the registry's `custom` signals option sets)."""
    auditlog._signals[pre_save] = _log_update
    for model, options in [*RECORDED.items(), (get_user_model(), USER_OPTIONS)]:
        masked = {"mask_callable": "itsm.audit.hidden"} if options.get("mask_fields") else {}
        # A Versioned model's `version` is bumped by every write with an F() expression (the ETag): noise, and no
        # value to show.
        versioned = ["version"] if issubclass(model, Versioned) else []
        exclude = [*options.get("exclude_fields", []), *versioned, *_reverse_relations(model)]
        auditlog.register(model, **{**options, **masked, "exclude_fields": exclude})
    for field in _set_null_keys():
        pre_delete.connect(_log_set_null, sender=field.related_model, dispatch_uid="itsm.audit.set_null")


def _reverse_relations(model: type[Model]) -> list[str]:
    """Other models' keys to this one: django-auditlog would write each as a field of a created row
    ("events": "itsm.Event.None")."""
    return [field.name for field in model._meta.get_fields() if field.auto_created and not field.concrete]


def remember(instance: Any) -> Any:
    """Keep the row as just read (under its lock, by the service about to change it): its update's audit row takes
    the values before from here, not from one more SELECT of the row (the query budget, docs/benchmarks.md)."""
    instance.__dict__[BEFORE] = {
        field.attname: copy.deepcopy(getattr(instance, field.attname)) for field in instance._meta.concrete_fields
    }
    return instance


@check_disable
def _log_update(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    """django-auditlog's update receiver, with the values before from `remember` when the service kept them. Used
    once: a second save of the instance reads the row again, as django-auditlog does."""
    before = instance.__dict__.pop(BEFORE, None)
    if before is None:
        log_update(sender=sender, instance=instance, **kwargs)
        return
    if instance._state.adding or instance.pk is None:
        return
    old = sender.from_db(instance._state.db, list(before), list(before.values()))
    changes = model_instance_diff(
        old,
        instance,
        fields_to_check=kwargs.get("update_fields"),
        use_json_for_changes=settings.AUDITLOG_STORE_JSON_CHANGES,
    )
    if changes:
        LogEntry.objects.log_create(instance, action=LogEntry.Action.UPDATE, changes=changes)


def hidden(value: str) -> str:
    """django-auditlog's mask for secrets: the fact of a value, never any of it (its default keeps half)."""
    return value if value in ("", "None") else HIDDEN


# --- writes that send no signal: QuerySet.update() and bulk_create() ----------------------------------------------
# tests/audit/test_bulk_writes.py finds every such write in itsm/: on a recorded model it goes through these two.
# QuerySet.delete() needs neither: Django deletes the rows of a model with delete receivers one by one, with signals.


def audited_update(queryset: QuerySet[Any], **changes: Any) -> int:
    """`queryset.update(**changes)`, recorded as each row's save() would be: one update row per object, the changed
    fields before and after. The rows are read under their lock in the update's transaction, so the values before are
    the ones replaced and a compare-and-set keeps its one winner. Returns the number of rows updated."""
    model = queryset.model
    if not _recording(model):
        return queryset.update(**changes)
    locked = queryset.select_for_update()  # for a write: the primary's alias
    with transaction.atomic(using=locked.db, savepoint=False):
        before = list(locked)
        if not before:
            return 0
        pks = [row.pk for row in before]
        updated = queryset.using(locked.db).filter(pk__in=pks).update(**changes)
        if any(hasattr(value, "resolve_expression") for value in changes.values()):  # F(), Coalesce(): as written
            written = model._default_manager.using(locked.db).in_bulk(pks)
            after = [written[pk] for pk in pks]
        else:
            after = [_with(row, changes) for row in before]
        fields = [*changes, *(model._meta.get_field(name).attname for name in changes)]
        _write(LogEntry.Action.UPDATE, zip(before, after, strict=True), fields)
    return updated


def audited_bulk_create(objs: Sequence[M], **options: Any) -> list[M]:
    """`bulk_create(objs, **options)` of their model, recorded as each one's save() would be: one create row per
    object, all written in one INSERT (per `batch_size`)."""
    if not objs:
        return []
    model = type(objs[0])
    created = model._default_manager.bulk_create(objs, **options)
    if _recording(model):
        _write(LogEntry.Action.CREATE, ((None, obj) for obj in created), None, options.get("batch_size"))
    return created


@cache
def _set_null_keys() -> list[ForeignKey[Any, Any]]:
    """The keys of recorded rows that a deletion sets to null (on_delete=SET_NULL): one UPDATE by Django's deletion,
    without signals."""
    return [
        field
        for model in auditlog.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, ForeignKey) and field.remote_field.on_delete is SET_NULL
    ]


@check_disable
def _log_set_null(sender: type[Model], instance: Model, **_: Any) -> None:
    """Before a row goes, record the keys to it that its deletion is about to set to null (in its transaction)."""
    for field in _set_null_keys():
        if field.related_model is sender:
            rows = field.model._base_manager.using(instance._state.db).filter(**{field.attname: instance.pk})
            nulled = [(row, _with(row, {field.attname: None})) for row in rows]
            _write(LogEntry.Action.UPDATE, nulled, [field.name, field.attname])


def _recording(model: type[Model]) -> bool:
    return auditlog.contains(model) and not auditlog_disabled.get()


def _with(row: M, changes: dict[str, Any]) -> M:
    new = copy.copy(row)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def _write(action: int, rows: Any, fields: list[str] | None, batch_size: int | None = None) -> None:
    """The rows django-auditlog's receivers would write for these (before, after) pairs, as one INSERT."""
    entries = []
    for old, new in rows:
        changes = model_instance_diff(
            old, new, fields_to_check=fields, use_json_for_changes=settings.AUDITLOG_STORE_JSON_CHANGES
        )
        if changes:
            entries.append(_entry(new, action, changes))
    LogEntry.objects.bulk_create(entries, batch_size=batch_size)


def _entry(instance: Model, action: int, changes: dict[str, Any]) -> LogEntry:
    """What LogEntry.objects.log_create writes (a bulk_create sends no pre_save: `_stamp` is called here)."""
    try:
        text = smart_str(instance)
    except ObjectDoesNotExist:
        text = DEFAULT_OBJECT_REPR
    entry = LogEntry(
        content_type=ContentType.objects.get_for_model(instance),
        object_pk=instance.pk,
        object_id=instance.pk if isinstance(instance.pk, int) else None,
        object_repr=text,
        serialized_data=LogEntry.objects._get_serialized_data_or_none(instance),
        action=action,
        changes=changes,
        cid=get_cid(),
    )
    _stamp(LogEntry, entry)
    return entry


@contextlib.contextmanager
def audit_context(**changes: Any) -> Iterator[Context]:
    """Rows written inside are attributed to `changes` (source, detail, actor...) over the context around it."""
    token = current.set(replace(current.get(), **changes))
    try:
        yield current.get()
    finally:
        current.reset(token)


def request_source(path: str) -> str:
    return next((source for prefix, source in URL_SOURCES if path.startswith(prefix)), "web")


def _actor_of(context: Context) -> tuple[Any, int | None, str | None]:
    """(user, user id, e-mail) of the context: the request's user as authenticated by now, or the one given."""
    user = context.actor
    if context.request is not None:
        user = getattr(context.request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False) and user.pk is not None:
        return user, user.pk, getattr(user, "email", None)
    return None, context.actor_id, context.actor_email


@cache
def _command() -> tuple[str, str]:
    """The manage.py command this process runs (empty under another entry point, e.g. pytest's call_command) and
    the operating-system user."""
    name = sys.argv[1] if len(sys.argv) > 1 and Path(sys.argv[0]).name in ("manage.py", "django-admin") else ""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's arbitrary user)
        user = ""
    return name, user


@receiver(pre_save, sender=LogEntry, dispatch_uid="itsm.audit.stamp")
def _stamp(sender: Any, instance: LogEntry, **_: Any) -> None:
    """Fill the actor, the source and the client address of a row django-auditlog is about to write."""
    if not instance._state.adding:
        return
    context = current.get()
    user, actor_id, email = _actor_of(context)
    if instance.actor_id is None and actor_id is not None:
        if user is not None:
            instance.actor = user
        else:
            instance.actor_id = actor_id
        instance.actor_email = email
    data: dict[str, Any] = {"source": context.source or "command"}
    if context.source is None:
        command, os_user = _command()
        data.update({"command": command, "os_user": os_user})
    elif context.detail:
        data["detail"] = context.detail
    instance.additional_data = {**data, **(instance.additional_data or {})}
    if context.request is not None and instance.remote_addr is None:
        # The trusted client address (REMOTE_ADDR, or the ITSM_NUM_PROXIES-th entry of X-Forwarded-For), as the
        # sign-in throttle reads it; not django-auditlog's, which believes the first entry a client sends.
        instance.remote_addr = BaseThrottle().get_ident(context.request) or None  # type: ignore[arg-type]


# --- Celery: the actor travels with the task, the task is the source -------------------------------------------


@signals.before_task_publish.connect
def _send_actor(headers: dict[str, Any] | None = None, **_: Any) -> None:
    _, actor_id, email = _actor_of(current.get())
    if actor_id is not None and headers is not None:
        headers.setdefault(ACTOR_HEADER, [actor_id, email])


_task_tokens: ContextVar[Any] = ContextVar("audit_task_token", default=None)


@signals.task_prerun.connect
def _task_started(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    sent = getattr(request, ACTOR_HEADER, None) or (getattr(request, "headers", None) or {}).get(ACTOR_HEADER)
    actor_id, email = sent if isinstance(sent, list | tuple) and len(sent) == 2 else (None, None)
    context = Context(
        source="task",
        detail=str(getattr(task, "name", "")),
        actor_id=actor_id if isinstance(actor_id, int) else None,
        actor_email=email if isinstance(email, str) else None,
    )
    _task_tokens.set(current.set(context))


@signals.task_postrun.connect
def _task_finished(**_: Any) -> None:
    token = _task_tokens.get()
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context (an eager task inside a request)
            current.reset(token)
        _task_tokens.set(None)
