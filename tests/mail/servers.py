"""Real mail servers for tests, on loopback: Debian's Dovecot from a private configuration (IMAP, plain login,
a passwd-file of test users), and an aiosmtpd capture server in a process of its own. Both are stopped by the PID
they were started with. The fixtures in tests/mail/conftest.py wrap them."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from imapclient import IMAPClient

from itsm.mail.imap import MailboxConfig
from tests.system.processes import PYTHON, Managed, free_port, wait_for_port

# Debian installs it in /usr/sbin, which is not on every user's PATH.
DOVECOT = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
OPENSSL = shutil.which("openssl")
# Test users written into the passwd-file: one per mailbox a session's tests ask for.
USERS = 500

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login{mechanisms}
auth_failure_delay = 0
mail_location = maildir:{base}/mail/%u
mail_fsync = never
first_valid_uid = 100
mail_uid = {mail_user}
mail_gid = {mail_group}
default_internal_user = {mail_user}
default_login_user = {login_user}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {base}/passwd
}}
{oauth2}userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={base}/home/%u
}}
"""

# With `introspection_url`: XOAUTH2 and OAUTHBEARER sign-ins, each token checked by that OAuth2 server (RFC 7662) and
# taken for the user its introspection names as `username`.
_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/oauth2.conf
}}
"""
_OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


class Dovecot:
    """One Dovecot on free loopback ports, configured in `directory` (which its mail user must be able to enter):
    IMAP on `port` (plain login allowed) and, with `tls` where openssl can make a certificate, STARTTLS on it and
    implicit TLS on `tls_port` with a self-signed certificate for localhost and 127.0.0.1 (`ca_file`). With
    `introspection_url` (credentials in it), XOAUTH2 sign-ins too, whose tokens that OAuth2 server checks.

    As root, mail belongs to the `dovecot` user the package creates (Dovecot refuses uid 0 for mail); otherwise to
    the user running the tests."""

    def __init__(self, directory: Path, *, tls: bool = True, introspection_url: str = "") -> None:
        self.directory = directory
        self.tls = tls
        self.introspection_url = introspection_url
        self.port = free_port()
        self.tls_port = 0
        self.ca_file = ""
        self.users: list[tuple[str, str]] = []
        self.config = directory / "dovecot.conf"
        self.passwd = directory / "passwd"
        self.log = directory / "dovecot.log"
        self.pid = 0

    def start(self) -> Dovecot:
        assert DOVECOT is not None, "dovecot is not installed (apt-get install -y dovecot-imapd)"
        root = os.geteuid() == 0
        user = "dovecot" if root else getpass.getuser()
        for sub in ("run", "state", "mail", "home"):
            (self.directory / sub).mkdir(mode=0o755)
            if root:
                shutil.chown(self.directory / sub, user, user)
        # Dovecot looks at a changed passwd-file at most once a second, so the users are all written before it starts.
        self.users = [(f"user{n:04d}", secrets.token_urlsafe(12)) for n in range(1, USERS + 1)]
        self.passwd.write_text("".join(f"{name}:{{PLAIN}}{password}\n" for name, password in self.users))
        self.passwd.chmod(0o644)
        ssl = self._certificate()
        oauth2 = ""
        if self.introspection_url:
            (self.directory / "oauth2.conf").write_text(_OAUTH2_CONFIG.format(url=self.introspection_url))
            oauth2 = _OAUTH2_PASSDB.format(base=self.directory)
        self.config.write_text(
            _CONFIG.format(
                base=self.directory,
                port=self.port,
                tls_port=self.tls_port,
                ssl=ssl,
                mail_user=user,
                mail_group=user,
                login_user="dovenull" if root else user,
                mechanisms=" xoauth2 oauthbearer" if oauth2 else "",
                oauth2=oauth2,
            )
        )
        # Dovecot daemonizes (its children keep the output open, so it goes to a file, not a pipe); the PID to stop
        # is the one its master writes.
        with (self.directory / "start.log").open("wb") as out:
            subprocess.run([DOVECOT, "-c", str(self.config)], check=True, stdout=out, stderr=out, timeout=30)
        deadline = time.monotonic() + 10
        while not self._master_pid() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pid = self._master_pid()
        wait_for_port(self.port, timeout=10)
        if self.tls_port:
            wait_for_port(self.tls_port, timeout=10)
        return self

    def _certificate(self) -> str:
        """The ssl settings: a self-signed certificate for localhost and 127.0.0.1 when openssl is there."""
        if OPENSSL is None or not self.tls:
            return "ssl = no"
        cert, key = self.directory / "cert.pem", self.directory / "key.pem"
        subprocess.run(
            [
                *(OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
                *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.tls_port, self.ca_file = free_port(), str(cert)
        return f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"

    def _master_pid(self) -> int:
        pid_file = self.directory / "run" / "master.pid"
        text = pid_file.read_text().strip() if pid_file.exists() else ""
        return int(text) if text.isdigit() else 0

    def stop(self) -> None:
        """Stop the master by its PID (it stops its children); also after a start that failed half-way."""
        self.pid = self.pid or self._master_pid()
        if not self.pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = 0

    def mailbox(self) -> DovecotMailbox:
        """The mailbox of a user no test had yet: an empty INBOX."""
        assert self.users, f"all {USERS} test users of this Dovecot are taken: raise USERS in tests/mail/servers.py"
        username, password = self.users.pop(0)
        return DovecotMailbox(self, username, password)


def _alive(pid: int) -> bool:
    """Whether `pid` runs; a daemon's exited master can stay a zombie where no init reaps it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextlib.contextmanager
def running_dovecot(*, tls: bool = True, introspection_url: str = "") -> Iterator[Dovecot]:
    """A Dovecot of its own (stopped on exit), or a skip when the package is not installed."""
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (apt-get install -y dovecot-imapd; .ci/run does)")
    # Not pytest's tmp_path: Dovecot's mail processes run as the dovecot user, who cannot enter root's 0700 dirs.
    directory = Path(tempfile.mkdtemp(prefix="itsm-dovecot-"))
    directory.chmod(0o755)
    server = Dovecot(directory, tls=tls, introspection_url=introspection_url)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class DovecotMailbox:
    """One test user's mailbox: its `config` for ImapMailbox (plain, on loopback), and direct IMAP access to deliver
    messages and look at what happened to them."""

    server: Dovecot
    username: str
    password: str

    @property
    def config(self) -> MailboxConfig:
        return MailboxConfig(
            host="127.0.0.1",
            port=self.server.port,
            security="plain",
            username=self.username,
            password=self.password,
            timeout=10,
        )

    @property
    def url(self) -> str:
        return f"imap://{self.username}:{self.password}@127.0.0.1:{self.server.port}/INBOX"

    @contextlib.contextmanager
    def client(self, folder: str = "INBOX") -> Iterator[IMAPClient]:
        client = IMAPClient("127.0.0.1", port=self.server.port, ssl=False, timeout=10)
        try:
            client.login(self.username, self.password)
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.select_folder(folder)
            yield client
        finally:
            client.logout()

    def deliver(self, raw: bytes, *, folder: str = "INBOX", seen: bool = False) -> int:
        """Put one message into `folder` (IMAP APPEND, created if missing); returns its UID."""
        with self.client(folder) as client:
            answer = client.append(folder, raw, flags=[b"\\Seen"] if seen else [])
        found = re.search(rb"APPENDUID \d+ (\d+)", answer)
        assert found, f"no APPENDUID in {answer!r}"
        return int(found.group(1))

    def uids(self, folder: str = "INBOX") -> list[int]:
        """The UIDs in `folder` that are not marked \\Deleted."""
        with self.client(folder) as client:
            return sorted(int(uid) for uid in client.search(["NOT", "DELETED"]))

    def flags(self, uid: int, folder: str = "INBOX") -> set[str]:
        with self.client(folder) as client:
            answer = client.get_flags([uid])
        return {flag.decode() for flag in answer.get(uid, ())}

    def folders(self) -> list[str]:
        with self.client() as client:
            return sorted(str(name) for _, _, name in client.list_folders())


@dataclass(frozen=True)
class CapturedMail:
    """One message the SMTP capture received: the envelope and the bytes as sent."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SmtpCapture:
    """An aiosmtpd server on 127.0.0.1:`port` in its own process, keeping every message in `directory`."""

    host = "127.0.0.1"

    def __init__(self, directory: Path, *, tls: bool = True, introspection_url: str = "") -> None:
        self.directory = directory
        self.tls = tls
        self.introspection_url = introspection_url
        self.port = free_port()
        self.process = Managed(
            [PYTHON, "-m", "tests.mail.smtp_capture", str(self.port), str(directory)], directory.parent / "smtp.log"
        )

    @property
    def url(self) -> str:
        """The EMAIL_URL of this server (itsm_project.env.parse_email_url)."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SmtpCapture:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process.start()
        wait_for_port(self.port, timeout=20)
        return self

    def stop(self) -> None:
        self.process.close()

    def captured(self) -> list[CapturedMail]:
        """Every message received since the last `clear()`, in the order received."""
        found = []
        for envelope_file in sorted(self.directory.glob("*.json")):
            envelope = json.loads(envelope_file.read_text())
            raw = envelope_file.with_suffix(".eml").read_bytes()
            found.append(CapturedMail(envelope["mail_from"], envelope["rcpt_tos"], raw))
        return found

    def messages(self) -> list[EmailMessage]:
        """The received messages, parsed (email.policy.default)."""
        return [mail.message for mail in self.captured()]

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """The messages once at least `count` have arrived (for mail sent by another process)."""
        deadline = time.monotonic() + timeout
        while len(found := self.messages()) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} messages arrived within {timeout} s"
            time.sleep(0.05)
        return found

    def clear(self) -> None:
        for path in self.directory.iterdir():
            path.unlink()
