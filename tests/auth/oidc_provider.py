"""A real OpenID Connect provider for the single sign-on tests: Node's oidc-provider running
tests/mail/oauth2_provider/sign_in.mjs (the mail tests' packages, pinned by package-lock.json) on a loopback port,
started and stopped by its PID, and a browser stand-in that walks its redirects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.test import Client

from tests.mail.oauth2 import NODE, PROVIDER, _installed
from tests.system.processes import Managed, free_port, wait_for, wait_for_port

CLIENT_ID = "itsm"
CALLBACK = "http://testserver/oidc/callback/"


class OidcProvider:
    def __init__(self, directory: Path, accounts: dict[str, dict[str, Any]]) -> None:
        self.directory = directory
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_secret = "itsm-client-secret-for-tests"
        self.log = directory / "provider.log"
        self.accounts_file = directory / "accounts.json"
        self.set_accounts(accounts)
        self.process: Managed | None = None

    def set_accounts(self, accounts: dict[str, dict[str, Any]]) -> None:
        """The claims of each account, read by the provider at every sign-in."""
        self.accounts_file.write_text(json.dumps(accounts))

    def start(self) -> OidcProvider:
        _installed()
        assert NODE is not None
        settings = self.directory / "settings.json"
        client = {
            "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": ["http://testserver/portal/sign-in/"],
        }
        settings.write_text(json.dumps({"clients": [client]}))
        command = [NODE, str(PROVIDER / "sign_in.mjs"), str(self.port), str(settings), str(self.accounts_file)]
        self.process = Managed(command, self.log)
        self.process.start()
        wait_for_port(self.port, timeout=30)
        wait_for(f"{self.issuer}/.well-known/openid-configuration", timeout=30)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.close()

    def lines(self, prefix: str) -> int:
        return sum(line.startswith(prefix) for line in self.log.read_text().splitlines())


class Browser:
    """The user's browser at the provider: keeps the provider's cookies, follows its redirects, and signs in as
    `account` when the provider asks who it is. The platform's side is a Django test Client."""

    def __init__(self, provider: OidcProvider) -> None:
        self.provider = provider
        self.session = requests.Session()

    def visit(self, url: str, account: str) -> str:
        """Follow the provider's redirects from `url` until one leaves it; returns that URL."""
        for _ in range(10):
            response = self.session.get(url, allow_redirects=False, timeout=10)
            assert response.status_code in (302, 303), (response.status_code, response.text[:500])
            url = urljoin(url, response.headers["Location"])
            if not url.startswith(self.provider.issuer):
                return url
            if urlsplit(url).path.startswith("/interaction/"):
                url += f"?account={account}"
        raise AssertionError("the provider kept redirecting")

    def end_session(self, url: str) -> None:
        """The provider's logout page posts its form by itself; post it as a browser would."""
        page = self.session.get(url, timeout=10)
        assert page.status_code == 200, page.text[:500]
        action = re.search(r'action="([^"]+)"', page.text)
        assert action is not None, page.text[:500]
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        done = self.session.post(urljoin(url, action.group(1)), data=fields, allow_redirects=False, timeout=10)
        assert done.status_code in (302, 303), done.text[:500]


def sign_in(client: Client, browser: Browser, account: str, next_url: str = "/portal/") -> Any:
    """The whole flow: the platform's button, the provider, the platform's callback. Returns the callback's
    response."""
    start = client.get(f"/oidc/authenticate/?next={next_url}")
    assert start.status_code == 302, start.content[:500]
    back = browser.visit(start["Location"], account)
    assert back.startswith(CALLBACK), back
    parts = urlsplit(back)
    return client.get(f"{parts.path}?{parts.query}")
