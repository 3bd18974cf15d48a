"""The guard against server-side request forgery for outgoing webhooks.

A webhook URL is chosen by a user, so without a guard the platform would POST into its own network: the cloud
metadata service, Redis, the admin of a router. Rules:

- only http and https, no user name or password in the URL;
- the host is resolved once, and every address it resolves to must be public: loopback, private (RFC 1918, ULA,
  carrier-grade NAT), link-local, multicast, reserved and unspecified addresses and the cloud metadata addresses
  are refused. Odd spellings of an address (2130706433, 0177.0.0.1, ::ffff:127.0.0.1) are caught because the
  check is on what the resolver returns, not on the text;
- the connection then goes to that resolved address (see `transport.py`), so a DNS answer that changes between
  the check and the connection (DNS rebinding) cannot redirect it.

`ITSM_WEBHOOK_ALLOW_PRIVATE=true` allows loopback, private and link-local addresses (a receiver inside the same
network, the tests); metadata, multicast, reserved and unspecified addresses stay refused.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 500
METADATA_HOSTNAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(Exception):
    """The URL is refused by policy; the message says why, in words for the person who typed it."""


class Unresolvable(Exception):
    """The host name does not resolve (now)."""


@dataclass(frozen=True)
class Destination:
    """A checked URL: where to connect (`addresses`, in the resolver's order) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def allow_private() -> bool:
    return bool(getattr(settings, "ITSM_WEBHOOK_ALLOW_PRIVATE", False))


def resolve(url: str, *, private_ok: bool | None = None) -> Destination:
    """Check `url` and resolve its host once. Raises UnsafeURL or Unresolvable."""
    private_ok = allow_private() if private_ok is None else private_ok
    scheme, host, port, path = _parse(url)
    name = host.rstrip(".")
    if name in METADATA_HOSTNAMES:
        raise UnsafeURL(f"{host} is a cloud metadata service.")
    if not private_ok and (name == "localhost" or name.endswith(".localhost")):
        raise UnsafeURL(f"{host} is this machine (a loopback name).")
    try:
        literal: IPAddress | None = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Unresolvable(f"{host} cannot be resolved ({exc}).") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not addresses:
            raise Unresolvable(f"{host} resolves to no address.")
    for address in addresses:
        reason = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]), private_ok=private_ok)
        if reason:
            where = f"{host} is" if literal is not None else f"{host} resolves to {address},"
            raise UnsafeURL(f"{where} {reason}; webhooks may only go to public addresses.")
    return Destination(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))


def address_refusal(ip: IPAddress, *, private_ok: bool) -> str | None:
    """Why `ip` may not be connected to, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = (
            ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        )
        if embedded is not None:
            return address_refusal(embedded, private_ok=private_ok)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return None if private_ok else "a loopback address"
    if ip.is_link_local:
        return None if private_ok else "a link-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or not ip.is_global:
        return None if private_ok else "a private address"
    return None


def validate_webhook_url(value: str) -> None:
    """Form and serializer validator: the same checks as at delivery, as a ValidationError."""
    try:
        resolve(value)
    except (UnsafeURL, Unresolvable) as exc:
        raise ValidationError(str(exc)) from None


def _parse(url: str) -> tuple[str, str, int, str]:
    if not url:
        raise UnsafeURL("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"A URL may have at most {MAX_URL_LENGTH} characters.")
    if any(char.isspace() or ord(char) < 32 or char == "\\" for char in url):
        raise UnsafeURL("A URL must not contain spaces, control characters or backslashes.")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL(f"Only http and https URLs are allowed, not {scheme + ':' if scheme else 'a URL without one'}.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("A URL must not contain a user name or password; receivers check the signature instead.")
    host = parts.hostname or ""
    if not host:
        raise UnsafeURL("The URL has no host.")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise UnsafeURL("The URL's port is not a number between 1 and 65535.")
    port = port or (443 if scheme == "https" else 80)
    if ":" not in host:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeURL(f"{host} is not a valid host name.") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, path
