"""One Chromium session on the live server for the browser tests (portal, desk, the end-to-end story): Debian's
headless Chromium driven by Selenium with Debian's chromedriver. Pages opened and clicked wait for the page they
load; the console is read after every page and any message on it fails the test; screenshots of whole pages go
under the test's tmp_path (the paths are printed) and, with UPDATE_DOCS_IMAGES=1, to docs/images/ for the README.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options as ChromeOptions
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "correct-horse-battery"  # tests.factories.make_user's
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
DESKTOP = (1400, 1000)
PHONE = (390, 844)
TALLEST = 6000

# For a browser test module: `pytestmark = BROWSER_TESTS`.
BROWSER_TESTS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or not Path(CHROMEDRIVER).exists(),
        reason="chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)",
    ),
]


class Browser:
    """One headless Chromium with its own profile, at `base_url`. `name` prefixes its screenshots, so two sessions
    of one test (a requester's and an agent's) keep theirs apart."""

    def __init__(self, base_url: str, artifacts: Path, name: str = "") -> None:
        options = ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
            f"--user-data-dir={artifacts / ('profile-' + (name or 'browser'))}",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=options)
        self.driver.implicitly_wait(0)
        self.base_url, self.artifacts, self.name = base_url, artifacts, name
        self.saved: dict[str, Path] = {}

    def quit(self) -> None:
        self.driver.quit()

    # --- pages ------------------------------------------------------------------------------------------------
    def wait(self, condition: Callable[[Any], Any], timeout: float = 15) -> Any:
        """Poll `condition` until it holds. While a page is replaced, Chromium may answer a look at the old one with
        any WebDriverException (not only a stale element: "Node with given id does not belong to the document"):
        such a moment is polled again, not a failure."""
        return WebDriverWait(self.driver, timeout, ignored_exceptions=(WebDriverException,)).until(condition)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.loaded()

    def loaded(self) -> None:
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")
        self.console_is_clean()

    def click(self, css: str) -> None:
        """Click and wait for the page the click loads (every form posts and is redirected back)."""
        old = self.driver.find_element(By.TAG_NAME, "html").id
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        self.wait(lambda d: d.find_element(By.TAG_NAME, "html").id != old)
        self.loaded()

    def type(self, css: str, text: str) -> None:
        field = self.driver.find_element(By.CSS_SELECTOR, css)
        field.clear()
        field.send_keys(text)

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return str(self.find(css).text)

    def h1(self) -> str:
        return self.text("h1")

    def messages(self) -> list[str]:
        """The admin's messages of the last page."""
        return [element.text for element in self.driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li")]

    def console_is_clean(self) -> None:
        messages = [f"{entry['level']}: {entry['message']}" for entry in self.driver.get_log("browser")]
        assert messages == [], f"console of {self.driver.current_url}: {messages}"

    def sign_in_to_admin(self, username: str) -> None:
        self.open("/admin/login/")
        self.type("#id_username", username)
        self.type("#id_password", PASSWORD)
        self.click("input[type=submit]")

    def sign_in_to_portal(self, username: str) -> None:
        self.open("/portal/sign-in/")
        self.type("#id_username", username)
        self.type("#id_password", PASSWORD)
        self.click("form.form button[type=submit]")

    # --- screenshots ------------------------------------------------------------------------------------------
    def shot(self, name: str, *, size: tuple[int, int] = DESKTOP, whole: bool = True, docs: str = "") -> Path:
        """The page at `size`, stretched to its content's height when `whole`; a copy to docs/images/`docs` when
        UPDATE_DOCS_IMAGES=1."""
        width, height = size
        self.driver.set_window_size(width, height)
        if whole:
            content, frame = self.driver.execute_script(
                "return [Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),"
                " window.outerHeight - window.innerHeight]"
            )
            self.driver.set_window_size(width, max(height, min(int(content) + int(frame), TALLEST)))
        path = self.artifacts / f"{self.name + '-' if self.name else ''}{name}.png"
        assert self.driver.save_screenshot(str(path))
        self.driver.set_window_size(*DESKTOP)
        png = path.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">I", png[16:20])[0] >= width
        assert len(png) > 5_000  # a rendered page, not a blank one
        self.saved[name] = path
        print(f"screenshot {path.stem}: {path}")  # noqa: T201  (where to look at it)
        if docs and os.environ.get("UPDATE_DOCS_IMAGES") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / docs)
        self.console_is_clean()
        return path
