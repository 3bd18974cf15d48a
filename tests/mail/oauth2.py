"""A real OAuth2 authorization server for the mail tests: Node's oidc-provider (tests/mail/oauth2_provider/, its
packages pinned by package-lock.json) on a loopback port, started and stopped by its PID. It hands out access
tokens by the client-credentials grant and answers token introspection, which a Dovecot started with its
`introspection_url` (tests/mail/servers.py) asks about every XOAUTH2 sign-in.

The fixtures in tests/mail/conftest.py wrap it; without node and npm they skip, saying what to install."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.mail.servers import DovecotMailbox
from tests.system.processes import Managed, free_port, http, wait_for, wait_for_port

PROVIDER = Path(__file__).parent / "oauth2_provider"
NODE = shutil.which("node")
NPM = shutil.which("npm")
# Dovecot signs in to the introspection endpoint as this client.
INTROSPECTOR = "dovecot"


@dataclass(frozen=True)
class RegisteredClient:
    """A client registered for one test: its tokens are for `mailbox`, valid `token_ttl` seconds."""

    client_id: str
    client_secret: str = field(repr=False)
    mailbox: str
    token_ttl: int


@dataclass(frozen=True)
class OAuth2Mailbox:
    """A test mailbox on a Dovecot that takes XOAUTH2, and the client whose tokens open it."""

    imap: DovecotMailbox
    client: RegisteredClient
    provider: OAuth2Provider


def _installed() -> None:
    """node and the provider's packages, or a skip naming what to install; `npm ci` (from the lockfile) when the
    packages are not installed yet, as .ci/run does."""
    if NODE is None or NPM is None:
        pytest.skip("node and npm are not installed (apt-get install -y nodejs npm; .ci/run does)")
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    if int(version.strip().lstrip("v").split(".")[0]) < 18:
        pytest.skip(f"oidc-provider needs Node.js 18 or newer, this is {version.strip()}")
    if (PROVIDER / "node_modules" / "oidc-provider").is_dir():
        return
    done = subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER, capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {PROVIDER} failed (it needs the npm registry once):\n{done.stderr[-2000:]}")


class OAuth2Provider:
    """oidc-provider on 127.0.0.1:`port`, its settings and log in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.log = directory / "provider.log"
        self._introspector_secret = secrets.token_urlsafe(24)
        self._registration_token = secrets.token_urlsafe(24)
        self.process: Managed | None = None

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def introspection_url(self) -> str:
        """The introspection endpoint with the credentials Dovecot signs in with (HTTP Basic from the URL)."""
        return f"http://{INTROSPECTOR}:{self._introspector_secret}@127.0.0.1:{self.port}/token/introspection"

    def start(self) -> OAuth2Provider:
        _installed()
        assert NODE is not None
        settings = self.directory / "settings.json"
        settings.write_text(
            json.dumps(
                {
                    "registration_token": self._registration_token,
                    "clients": [{"client_id": INTROSPECTOR, "client_secret": self._introspector_secret}],
                }
            )
        )
        self.process = Managed([NODE, str(PROVIDER / "provider.mjs"), str(self.port), str(settings)], self.log)
        self.process.start()
        wait_for_port(self.port, timeout=30)
        wait_for(f"{self.issuer}/.well-known/openid-configuration", timeout=30)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.close()

    def register(self, mailbox: str, *, token_ttl: int = 600) -> RegisteredClient:
        """A new client of the client-credentials grant whose tokens open `mailbox` (RFC 7591 registration)."""
        metadata = {
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_basic",
            "mailbox": mailbox,
            "token_ttl": token_ttl,
        }
        status, _, answer = http("POST", f"{self.issuer}/reg", metadata, bearer=self._registration_token)
        assert status == 201, f"registration refused: {status} {answer}"
        return RegisteredClient(answer["client_id"], answer["client_secret"], mailbox, token_ttl)

    def revoke(self, client: RegisteredClient, token: str) -> None:
        """Revoke an access token of `client` (RFC 7009), as an administrator withdrawing it would."""
        status, answer = self._post(client.client_id, client.client_secret, "/token/revocation", token=token)
        assert status == 200, f"revocation refused: {status} {answer}"

    def introspect(self, token: str) -> dict[str, object]:
        """What the provider says of `token` (RFC 7662), as Dovecot asks it."""
        status, answer = self._post(INTROSPECTOR, self._introspector_secret, "/token/introspection", token=token)
        assert status == 200, f"introspection refused: {status} {answer}"
        return answer

    def token(self, client: RegisteredClient) -> str:
        """A new access token of `client`, asked for directly."""
        status, answer = self._post(client.client_id, client.client_secret, "/token", grant_type="client_credentials")
        assert status == 200, f"token refused: {status} {answer}"
        return str(answer["access_token"])

    def issued(self, client: RegisteredClient) -> int:
        """How many access tokens `client` was given."""
        return self.log.read_text().splitlines().count(f"issued {client.client_id}")

    def _post(self, user: str, password: str, path: str, **form: str) -> tuple[int, dict[str, object]]:
        """A form POST with HTTP Basic client authentication (RFC 6749 §2.3.1); the status and the JSON answer."""
        pair = f"{urllib.parse.quote_plus(user)}:{urllib.parse.quote_plus(password)}"
        request = urllib.request.Request(
            f"{self.issuer}{path}",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
