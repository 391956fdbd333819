"""Browser tests: Debian's Chromium driven by selenium against a live server on the real stack.

The live server is pytest-django's (the test database, static files served); Celery runs as a real worker plus a
real beat (so jobs are synced exactly as in production); the cluster is the local SLURM cluster. Each page visited
is screenshotted under `test-artifacts/screenshots/` (PORTAL_TEST_ARTIFACTS overrides the folder), and every
request the page made is checked to have gone to the live server and nowhere else.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import PROJECT_DIR, WorkerProcess, celery_process
from tests.factories import MEMBER_PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("PORTAL_TEST_ARTIFACTS", PROJECT_DIR / "test-artifacts"))
# Chromium as a closed machine needs it: no background networking, no component updates, no sync.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--window-size=1280,900",
    "--force-device-scale-factor=1",
)


SWAPPED = (StaleElementReferenceException, NoSuchElementException)
PAGE_HEIGHTS_JS = (
    "return [Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),"
    " window.innerHeight, window.outerHeight]"
)
MAX_SCREENSHOT_HEIGHT = 8000


class Browser:
    """A Chromium window on the live server: visit, log in, wait, screenshot, and the external-request check."""

    def __init__(self, driver: WebDriver, base_url: str, downloads: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.downloads = downloads
        self.origin = urlsplit(base_url).netloc

    def visit(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def login(self, username: str, password: str = MEMBER_PASSWORD) -> None:
        self.visit("/login/")
        self.driver.find_element(By.NAME, "username").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        self.wait_for(lambda d: urlsplit(d.current_url).path != "/login/", "the login to finish")

    def logout(self) -> None:
        self.driver.delete_all_cookies()

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, condition, what: str, timeout_s: float = 15):
        # htmx swaps elements while a condition reads them: a stale or missing element means "not yet".
        wait = WebDriverWait(self.driver, timeout_s, poll_frequency=0.2, ignored_exceptions=SWAPPED)
        return wait.until(condition, message=f"waiting for {what}")

    def wait_visible(self, css: str, timeout_s: float = 15):
        return self.wait_for(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)), css, timeout_s)

    def text(self) -> str:
        return self.find("body").text

    @staticmethod
    def screenshot_path(name: str) -> Path:
        path = ARTIFACTS / "screenshots" / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def screenshot(self, name: str) -> Path:
        """Save the whole page (its full height, 1280 px wide) as ARTIFACTS/screenshots/NAME.png."""
        path = self.screenshot_path(name)
        for _ in range(3):  # a taller window can reflow the page: measure again until it fits
            content, inner, outer = self.driver.execute_script(PAGE_HEIGHTS_JS)
            if inner >= min(content, MAX_SCREENSHOT_HEIGHT):
                break
            self.driver.set_window_size(1280, min(content, MAX_SCREENSHOT_HEIGHT) + outer - inner)
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 900)
        return path

    def requested_urls(self) -> list[str]:
        """Every URL this page loaded or fetched (document, scripts, styles, images, fetch and XHR)."""
        return self.driver.execute_script(
            "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name))"
        )

    def assert_nothing_external(self) -> None:
        """Every request of the current page went to the live server; the console shows no CSP violation."""
        outside = [url for url in self.requested_urls() if urlsplit(url).netloc != self.origin]
        assert outside == [], f"the page fetched from outside the server: {outside}"
        problems = [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        csp = [message for message in problems if "Content Security Policy" in message]
        assert csp == [], f"the page broke its Content-Security-Policy: {csp}"


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebDriver, Path]]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Chromium is missing: `make test` installs chromium and chromium-driver (make browser)")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver, downloads
    finally:
        driver.quit()


@pytest.fixture
def browser(django_db_setup, chromium, live_server) -> Iterator[Browser]:
    driver, downloads = chromium
    browser = Browser(driver, live_server.url, downloads)
    yield browser
    driver.delete_all_cookies()
    driver.get_log("browser")  # the next test starts with an empty console


@pytest.fixture(scope="session")
def celery_beat_process(
    tmp_path_factory: pytest.TempPathFactory, celery_worker_process: WorkerProcess, portal_file_store: Path
) -> Iterator[subprocess.Popen]:
    """A real `celery beat` whose scheduled syncs go to the test worker's queue."""
    folder = tmp_path_factory.mktemp("beat")
    arguments = ["beat", "--schedule", str(folder / "schedule"), "--pidfile", str(folder / "beat.pid")]
    with celery_process(
        arguments, queue=celery_worker_process.queue, log_path=folder / "beat.log", file_store=portal_file_store
    ) as process:
        yield process
