"""Every sign-in path checks a password here (the API's token endpoint, the admin's and the portal's sign-in forms;
directory and password-reset sign-ins are to call the same function), so one set of limits holds on all of them.
A user's second factor is checked here too, and a wrong code counts like a wrong password (itsm.services.two_factor).
Password-reset requests are counted by the same mechanism in buckets of their own (`password_reset_take`).

Attempts are counted in the database (LoginThrottle), so a cache outage lifts no limit, in two buckets: an account
from one address, and one address for every account. The count is taken in its own transaction, under the row's
lock, *before* the password hash: ten guesses sent at once get exactly as many checks as the limit allows, not as
many as arrive while the first hashes run. A success gives its attempt back (and clears the account's bucket for
that address); a failure keeps it.

Past a bucket's limit nothing is checked until the bucket's wait is over, and every further failure doubles the
wait (ITSM_LOGIN_BACKOFF_SECONDS up to ITSM_LOGIN_BACKOFF_MAX_SECONDS). There is no lock on an account as such:
a stranger who sends wrong passwords for someone's account only fills the buckets of the stranger's own address,
and the owner, from another address, still signs in.

The address is the one the caller trusts (REMOTE_ADDR, or the entry ITSM_NUM_PROXIES from the right of
X-Forwarded-For, as DRF's throttles read it), so a client cannot choose a fresh bucket by sending a header.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from itsm import metrics
from itsm.models import LoginThrottle
from itsm.services.two_factor import SecondFactorRefused, second_factor_check
from itsm.services.users import username_normalise

Scope = LoginThrottle.Scope


class LoginThrottled(Exception):
    """Too many failed sign-ins from this address (for this account, or for all): nothing was checked."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"Too many failed sign-ins: retry after {retry_after} seconds.")


@dataclass(frozen=True)
class _Bucket:
    key: str
    scope: str
    limit: int


def _buckets(*, username: str, address: str) -> list[_Bucket]:
    account = username_normalise(username).lower()
    buckets = [
        _Bucket(
            _digest(f"account-address\0{account}\0{address}"), Scope.ACCOUNT_ADDRESS, _limit(Scope.ACCOUNT_ADDRESS)
        ),
        _Bucket(_digest(f"address\0{address}"), Scope.ADDRESS, _limit(Scope.ADDRESS)),
    ]
    return sorted(buckets, key=lambda bucket: bucket.key)  # one locking order, so two attempts cannot deadlock


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _limit(scope: str) -> int:
    if scope == Scope.ADDRESS:
        return int(settings.ITSM_LOGIN_FAILURES_PER_ADDRESS)
    return int(settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT)


def backoff(excess: int) -> timedelta:
    """The wait after the failure `excess` places past the limit (0 for the failure that reached it)."""
    base, ceiling = settings.ITSM_LOGIN_BACKOFF_SECONDS, settings.ITSM_LOGIN_BACKOFF_MAX_SECONDS
    return timedelta(seconds=min(ceiling, base * 2 ** min(excess, 32)))


def _forgotten(row: LoginThrottle, now: datetime) -> bool:
    """Failures are forgotten a window of quiet after the last attempt (or after the end of the wait)."""
    since = max(row.last_attempt_at, row.blocked_until or row.last_attempt_at)
    return now >= since + timedelta(seconds=settings.ITSM_LOGIN_FAILURE_WINDOW_SECONDS)


def login_attempt_take(*, username: str, address: str) -> list[_Bucket]:
    """Count one attempt in each bucket, or raise LoginThrottled (counting nothing) while one of them waits."""
    buckets = _buckets(username=username, address=address)
    try:
        attempt_take(buckets)
    except LoginThrottled:
        metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
        raise
    return buckets


def attempt_take(buckets: list[_Bucket]) -> None:
    """The mechanism the sign-ins and the password resets share: one attempt counted in each bucket, under the rows'
    locks, in its own transaction; or LoginThrottled, counting nothing, while one of them waits."""
    now = timezone.now()
    with transaction.atomic():
        LoginThrottle.objects.bulk_create(
            [LoginThrottle(key=b.key, scope=b.scope, last_attempt_at=now) for b in buckets], ignore_conflicts=True
        )
        rows = {
            row.key: row for row in LoginThrottle.objects.select_for_update().filter(key__in=[b.key for b in buckets])
        }
        until = [row.blocked_until for row in rows.values() if row.blocked_until is not None]
        waits = [(moment - now).total_seconds() for moment in until if moment > now]
        if waits:
            raise LoginThrottled(retry_after=max(1, math.ceil(max(waits))))
        for bucket in buckets:
            row = rows[bucket.key]
            if _forgotten(row, now):
                row.failures, row.blocked_until = 0, None
            row.failures += 1
            row.last_attempt_at = now
            if row.failures >= bucket.limit:
                row.blocked_until = now + backoff(row.failures - bucket.limit)
            row.save(update_fields=["failures", "last_attempt_at", "blocked_until"])


def login_attempt_succeeded(buckets: list[_Bucket]) -> None:
    """The attempt was the owner's: the account's bucket for this address is cleared, and the address's attempt
    given back. Not more: signing in to one's own account must not wipe the address's failures on others."""
    with transaction.atomic():
        for bucket in buckets:
            if bucket.scope == Scope.ACCOUNT_ADDRESS:
                LoginThrottle.objects.filter(key=bucket.key).delete()
                continue
            row = LoginThrottle.objects.select_for_update().filter(key=bucket.key).first()
            if row is None:
                continue
            row.failures = max(0, row.failures - 1)
            if row.failures < bucket.limit:
                row.blocked_until = None
            row.save(update_fields=["failures", "blocked_until"])


def credentials_check(
    *, username: str, password: str, address: str, otp: str | None = None, enrolment_required: bool = False
) -> Any | None:
    """The active user these credentials name (`Agent` names `agent`), or None. Raises LoginThrottled, before
    the password is hashed, while the account's bucket for this address or the address's bucket waits.

    With `otp` (a form or a request that offers the field), a user with a second factor must also give one of its
    codes, else SecondFactorRefused: a wrong or missing code keeps the attempt counted like a wrong password, so
    codes are guessed no faster than passwords. `otp=None` is for the callers that ask for no code (none do today);
    `enrolment_required` refuses an admin without a second factor while ITSM_REQUIRE_2FA_FOR_ADMINS is on."""
    buckets = login_attempt_take(username=username, address=address)
    user = authenticate(None, username=username, password=password)
    if user is None or not user.is_active:
        metrics.LOGIN_FAILURES.labels(reason="credentials").inc()
        return None
    if otp is not None:
        try:
            device = second_factor_check(user=user, code=otp, enrolment_required=enrolment_required)
        except SecondFactorRefused as refused:
            if refused.code == SecondFactorRefused.ENROL:
                login_attempt_succeeded(buckets)  # nothing to guess: the password was right
            else:
                metrics.LOGIN_FAILURES.labels(reason="second_factor").inc()
            raise
        if device is not None:
            user.otp_device = device  # type: ignore[attr-defined]  # django-otp marks the session verified at sign-in
    login_attempt_succeeded(buckets)
    return user


def password_reset_take(*, email: str, address: str) -> bool:
    """Whether a password-reset mail may go out for this request: one request counted for the client address and
    for the e-mail address asked for (known or not), with the sign-ins' waits past ITSM_PASSWORD_RESETS_PER_*."""
    buckets = [
        _Bucket(_digest(f"reset-address\0{address}"), Scope.RESET_ADDRESS, settings.ITSM_PASSWORD_RESETS_PER_ADDRESS),
        _Bucket(
            _digest(f"reset-email\0{email.strip().lower()}"), Scope.RESET_EMAIL, settings.ITSM_PASSWORD_RESETS_PER_EMAIL
        ),
    ]
    try:
        attempt_take(sorted(buckets, key=lambda bucket: bucket.key))
    except LoginThrottled:
        return False
    return True


def login_throttle_keys_of(*, usernames: list[str], emails: list[str], addresses: list[str]) -> list[str]:
    """The keys of the buckets named after a person (personal data erasure): their password-reset requests, and
    their account's failures from each client address known for them."""
    keys = [_digest(f"reset-email\0{email.strip().lower()}") for email in emails]
    for username in usernames:
        account = username_normalise(username).lower()
        keys += [_digest(f"account-address\0{account}\0{address}") for address in addresses]
    return keys


def login_throttles_forget(*, before: datetime, now: datetime) -> int:
    """Delete the buckets nobody has tried since `before` and that no longer wait (the daily cleanup)."""
    stale = LoginThrottle.objects.filter(last_attempt_at__lt=before).exclude(blocked_until__gte=now)
    return stale.delete()[0]
