"""Failed sign-ins counted per account and per client address, in fixed windows kept in the cache: the API's token
endpoint and the portal's sign-in page share the same counts, so neither is a way around the other's limit."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache


class LoginFailures:
    """The address is the one the caller trusts (REMOTE_ADDR, or the entry ITSM_NUM_PROXIES from the right of
    X-Forwarded-For, as DRF's throttles read it), so a client cannot choose a fresh bucket by sending a header."""

    def __init__(self, *, username: str, address: str) -> None:
        self.window = settings.ITSM_LOGIN_FAILURE_WINDOW_SECONDS
        self.limits = {
            f"login-failures:account:{username.lower()}": settings.ITSM_LOGIN_FAILURES_PER_ACCOUNT,
            f"login-failures:address:{address}": settings.ITSM_LOGIN_FAILURES_PER_ADDRESS,
        }

    def blocked(self) -> bool:
        counts = cache.get_many(list(self.limits))
        return any(int(counts.get(key) or 0) >= limit for key, limit in self.limits.items())

    def record(self) -> None:
        for key in self.limits:
            cache.add(key, 0, timeout=self.window)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=self.window)
