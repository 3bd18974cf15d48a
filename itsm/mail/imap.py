"""Reading one IMAP folder with imapclient: new messages by UID, fetched without setting \\Seen, then marked seen or
moved to a folder for messages that could not be processed. TLS (implicit or STARTTLS) with certificate checks;
a plain connection only to a loopback address. Sign-in with a password, or with an OAuth2 access token (SASL
XOAUTH2). Every failure of the server or the connection is `MailboxUnavailable`."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

SECURITY = ("ssl", "starttls", "plain")
DEFAULT_PORTS = {"imaps": 993, "imap": 143}
URL_OPTIONS = ("failed_folder", "timeout", "ca_file", "auth", "token_url", "client_id", "scope")
OAUTH2_URL_OPTIONS = ("token_url", "client_id", "scope")


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine without a DNS lookup: `localhost` or a loopback address literal."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OAuth2Client:
    """Where a mailbox that signs in with OAuth2 gets its access tokens: the client-credentials grant (RFC 6749
    §4.4) at `token_url` as `client_id`, for `scope` (none when empty). HTTPS, or HTTP to a loopback address."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str = ""

    def __post_init__(self) -> None:
        url = urlsplit(self.token_url)
        try:
            host = url.hostname
        except ValueError:
            host = None
        if url.scheme not in ("https", "http") or not host:
            raise ValueError(f"the OAuth2 token URL must be an https:// URL, not {self.token_url!r}")
        if url.scheme == "http" and not is_loopback(host):
            raise ValueError(f"the OAuth2 token URL must use https:// (http:// only to a loopback address): {host!r}")
        if "@" in url.netloc:
            raise ValueError("the OAuth2 token URL must not hold credentials: the client id and secret are apart")
        if not self.client_id:
            raise ValueError("OAuth2 sign-in needs a client id")
        if not self.client_secret:
            raise ValueError(f"OAuth2 sign-in needs the client secret of client {self.client_id!r}")


@dataclass(frozen=True)
class MailboxConfig:
    """Where the mailbox is and how to log in. TLS checks the server's certificate and name against the system's CAs,
    or, with `ca_file` (a PEM file), against that CA only: for a self-hosted server with a private CA.

    With `oauth2`, the mailbox signs in with an access token from that client (`oauth2_token`, filled in by
    whoever fetched it) instead of a password."""

    host: str
    port: int
    security: str
    username: str
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    failed_folder: str = "ITSM-Failed"
    timeout: float = 30.0
    ca_file: str = ""
    oauth2: OAuth2Client | None = None
    oauth2_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.security not in SECURITY:
            raise ValueError(f"IMAP security must be one of {', '.join(SECURITY)}, not {self.security!r}")
        if self.security == "plain" and not is_loopback(self.host):
            raise ValueError(
                f"IMAP without TLS is allowed only to a loopback address, not to {self.host!r}: "
                "use imaps:// (TLS) or imap:// with STARTTLS"
            )
        if not self.host or not 0 < self.port < 65536:
            raise ValueError(f"IMAP needs a host and a port between 1 and 65535 (got {self.host!r}:{self.port})")
        if not self.folder or not self.failed_folder or self.folder == self.failed_folder:
            raise ValueError("the IMAP folder and the failed folder must be two different, non-empty names")
        if self.timeout <= 0:
            raise ValueError(f"the IMAP timeout must be positive, not {self.timeout}")
        if self.oauth2 is not None and self.password:
            raise ValueError("a mailbox signs in with a password or with OAuth2, not both")


def config_from_url(url: str, *, oauth2_client_secret: str = "") -> MailboxConfig:
    """imaps://user:password@host:993/INBOX is implicit TLS; imap://… is STARTTLS, or plain to a loopback host.
    User and password are percent-decoded (`%40` for `@`); ports default to 993 and 143; the folder is the path
    (INBOX when empty). Options: ?failed_folder=NAME, ?timeout=SECONDS, ?ca_file=/path/ca.pem.

    imaps://user@host/INBOX?auth=oauth2&token_url=URL&client_id=ID&scope=SCOPE signs in with OAuth2 instead: no
    password in the URL, the client secret (`oauth2_client_secret`) kept apart from it."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"an IMAP URL starts with imaps:// or imap://, not {scheme + '://' if scheme else url!r}")
    if not parts.hostname:
        raise ValueError("the IMAP URL has no host: imaps://user:password@imap.example.com/INBOX")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError("the IMAP URL has an invalid port") from None
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - set(URL_OPTIONS))
    if unknown:
        raise ValueError(f"the IMAP URL has unknown options: {', '.join(unknown)} (known: {', '.join(URL_OPTIONS)})")
    oauth2 = _oauth2_from_url(parts.username, parts.password, query, oauth2_client_secret)
    if oauth2 is None and (not parts.username or parts.password is None):
        raise ValueError("the IMAP URL needs a user name and a password: imaps://user:password@host/INBOX")
    try:
        timeout = float(query.get("timeout", "30"))
    except ValueError:
        raise ValueError(f"the IMAP URL's timeout is not a number of seconds: {query['timeout']!r}") from None
    security = "ssl" if scheme == "imaps" else "plain" if is_loopback(parts.hostname) else "starttls"
    return MailboxConfig(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        failed_folder=query.get("failed_folder") or "ITSM-Failed",
        timeout=timeout,
        ca_file=query.get("ca_file", ""),
        oauth2=oauth2,
    )


def _oauth2_from_url(
    username: str | None, password: str | None, query: dict[str, str], client_secret: str
) -> OAuth2Client | None:
    auth = query.get("auth", "password")
    if auth == "password":
        given = [name for name in OAUTH2_URL_OPTIONS if name in query]
        if given:
            raise ValueError(f"the IMAP URL's {', '.join(given)} go with auth=oauth2")
        return None
    if auth != "oauth2":
        raise ValueError(f"the IMAP URL's auth is password (the default) or oauth2, not {auth!r}")
    if not username or password is not None:
        raise ValueError(
            "with auth=oauth2 the IMAP URL names the mailbox's user and no password: imaps://user@host/INBOX?auth=oauth2"
        )
    if not query.get("token_url") or not query.get("client_id"):
        raise ValueError("with auth=oauth2 the IMAP URL needs token_url=… and client_id=… (and most often scope=…)")
    if not client_secret:
        raise ValueError("the IMAP URL signs in with OAuth2, but ITSM_MAIL_OAUTH2_CLIENT_SECRET is not set")
    return OAuth2Client(
        token_url=query["token_url"],
        client_id=query["client_id"],
        client_secret=client_secret,
        scope=query.get("scope", ""),
    )


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes


class MailboxUnavailable(Exception):
    """Connecting, logging in or selecting the folder failed, or the connection broke: the text says what."""


class LoginRefused(MailboxUnavailable):
    """The server refused the sign-in: the password, or the OAuth2 access token (expired, revoked, not granted)."""


class ImapMailbox:
    """One session on one folder: `with ImapMailbox(config) as box:` connects, logs in and selects the folder;
    leaving the block logs out."""

    def __init__(self, config: MailboxConfig) -> None:
        self.config = config
        self.uidvalidity = 0
        self._client: IMAPClient | None = None
        self._failed_folder_exists = False

    @property
    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file or None)

    def __enter__(self) -> ImapMailbox:
        return self if self._client is not None else self.open()

    def open(self) -> ImapMailbox:
        """Connect, sign in and select the folder: what entering the with block does (a box opened this way enters
        it as it is), for a caller that decides what to do about a refused sign-in before the block."""
        config = self.config
        try:
            client = IMAPClient(
                config.host,
                port=config.port,
                ssl=config.security == "ssl",
                ssl_context=self._tls() if config.security == "ssl" else None,
                timeout=config.timeout,
            )
        except (OSError, IMAPClientError) as exc:
            raise MailboxUnavailable(f"cannot connect to IMAP server {self._where}: {_reason(exc)}") from None
        self._client = client
        try:
            if config.security == "starttls":
                client.starttls(self._tls())
            if config.oauth2 is None:
                client.login(config.username, config.password)
            else:
                self._oauth2_login(client)
        except LoginError as exc:
            self._close()
            if config.oauth2 is None:
                message = f"IMAP login to {self._where} as {config.username!r} failed: {_reason(exc)}"
                raise LoginRefused(message) from None
            raise LoginRefused(
                f"IMAP OAuth2 sign-in (XOAUTH2) to {self._where} as {config.username!r} failed: {_reason(exc)} "
                f"(the server refused the access token of client {config.oauth2.client_id!r}: expired or revoked, "
                "or the app was not granted this mailbox)"
            ) from None
        except MailboxUnavailable:
            self._close()
            raise
        except (OSError, IMAPClientError) as exc:
            self._close()
            step = "STARTTLS" if config.security == "starttls" else "login"
            raise MailboxUnavailable(f"IMAP {step} with {self._where} failed: {_reason(exc)}") from None
        try:
            selected = client.select_folder(config.folder)
        except (OSError, IMAPClientError) as exc:
            self._close()
            raise MailboxUnavailable(
                f"cannot select IMAP folder {config.folder!r} on {self._where}: {_reason(exc)}"
            ) from None
        self.uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        return self

    def _oauth2_login(self, client: IMAPClient) -> None:
        if not self.config.oauth2_token:
            raise MailboxUnavailable(f"IMAP OAuth2 sign-in to {self._where}: no access token was fetched")
        if not client.has_capability("AUTH=XOAUTH2"):
            raise MailboxUnavailable(f"IMAP server {self._where} does not offer OAuth2 sign-in (AUTH=XOAUTH2)")
        client.oauth2_login(self.config.username, self.config.oauth2_token)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._close()

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (OSError, IMAPClientError):
            # A broken connection has nothing left to log out of; make sure the socket is gone.
            try:
                client.shutdown()
            except (OSError, IMAPClientError):
                return

    @property
    def client(self) -> IMAPClient:
        """The open imapclient connection, for what this class does not cover."""
        if self._client is None:
            raise MailboxUnavailable("the IMAP mailbox is not open (use it inside a with block)")
        return self._client

    def _broken(self, action: str, exc: Exception) -> MailboxUnavailable:
        self._close()
        return MailboxUnavailable(f"IMAP {action} on {self._where} failed: {_reason(exc)}")

    def uids_after(self, uid: int, *, limit: int) -> list[int]:
        """UIDs greater than `uid` in the folder, ascending, at most `limit` of them."""
        try:
            # "UID n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8), hence the filter.
            found = self.client.search(["UID", f"{max(uid, 0) + 1}:*"])
        except (OSError, IMAPClientError) as exc:
            raise self._broken("search", exc) from None
        return sorted(int(found_uid) for found_uid in found if int(found_uid) > uid)[: max(limit, 0)]

    def fetch(self, uids: list[int]) -> list[FetchedMessage]:
        """The raw messages of `uids` that still exist, in the order asked for; BODY.PEEK[] leaves \\Seen alone."""
        if not uids:
            return []
        try:
            answer = self.client.fetch(uids, ["BODY.PEEK[]"])
        except (OSError, IMAPClientError) as exc:
            raise self._broken("fetch", exc) from None
        fetched = []
        for uid in uids:
            data = answer.get(uid, {})
            raw = data.get(b"BODY[]")
            if isinstance(raw, bytes):
                fetched.append(FetchedMessage(uid=uid, raw=raw))
        return fetched

    def mark_seen(self, uid: int) -> None:
        try:
            self.client.add_flags([uid], [SEEN], silent=True)
        except (OSError, IMAPClientError) as exc:
            raise self._broken("mark as seen", exc) from None

    def _ensure_failed_folder(self) -> None:
        if self._failed_folder_exists:
            return
        client, name = self.client, self.config.failed_folder
        try:
            if not client.folder_exists(name):
                try:
                    client.create_folder(name)
                except IMAPClientError:
                    # Another worker may have created it between the two commands.
                    if not client.folder_exists(name):
                        raise
        except (OSError, IMAPClientError) as exc:
            raise self._broken(f"creating folder {name!r}", exc) from None
        self._failed_folder_exists = True

    def move_to_failed(self, uid: int) -> None:
        """Move the message into the failed folder (created if missing): MOVE (RFC 6851) where the server has it,
        else COPY, \\Deleted and UID EXPUNGE of this UID only (RFC 4315). A server with neither MOVE nor UIDPLUS
        keeps the message, marked \\Deleted, until someone expunges the folder: a plain EXPUNGE would also remove
        messages others marked."""
        self._ensure_failed_folder()
        client, name = self.client, self.config.failed_folder
        try:
            if client.has_capability("MOVE"):
                client.move([uid], name)
                return
            client.copy([uid], name)
            client.add_flags([uid], [DELETED], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge([uid])
        except (OSError, IMAPClientError) as exc:
            raise self._broken(f"moving message {uid} to {name!r}", exc) from None


def _reason(exc: BaseException) -> str:
    """The server's or the system's words: imapclient words some errors as the repr of bytes (b'...')."""
    text = str(exc)
    if len(text) > 2 and text[:2] in ("b'", 'b"') and text[-1] == text[1]:
        text = text[2:-1]
    return text or type(exc).__name__
