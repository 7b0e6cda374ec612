"""The console in a real browser: Debian's Chromium driven by Playwright against the local stack.

Playwright's own browser download cannot be used here, so the tests launch `/usr/bin/chromium` (or
`KR_CHROMIUM`). Without it the tests are skipped with a message saying how to install it, unless
`KR_BROWSER_TESTS=required` (CI sets it): then a missing browser fails them. Screenshots go to
`.build/test-artifacts/console/` (kept after the run, ignored by git).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from local.system import LocalOptions, LocalSystem, NewKey
from tests.support.api_client import RelayClient

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("KR_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = os.environ.get("KR_BROWSER_TESTS") == "required"
ARTIFACTS = ROOT / ".build" / "test-artifacts" / "console"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What the browser may log: the API's answers the tests provoke (a bad key's 401, GET /usage's 404).
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of (401|404|422)")


def chromium_or_skip() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (
        f"Chromium was not found at {CHROMIUM}: the console's browser tests need Debian's Chromium "
        "(`apt-get install chromium` as root, which `make e2e` and `make test` do when they can; "
        "or point KR_CHROMIUM at another Chromium binary)"
    )
    if REQUIRED:
        pytest.fail(message)
    pytest.skip(message)


# Module-scoped, not session-scoped: Playwright's sync API keeps an asyncio loop running on the thread for as
# long as it is open, and every later test on the same worker that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True, args=FLAGS)
        yield launched
        launched.close()


@dataclass
class Console:
    stack: LocalSystem
    key: NewKey
    api: RelayClient
    url: str
    problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def console_stack() -> Iterator[Console]:
    chromium_or_skip()  # no local stack to start when the tests cannot run
    with LocalSystem(LocalOptions(job_seconds=2.0)) as stack:
        key = stack.create_api_key("console")
        assert stack.console is not None
        yield Console(stack=stack, key=key, api=RelayClient(stack.base_url, key.api_key), url=stack.console.url)


@pytest.fixture
def page(browser: Browser, console_stack: Console, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh tab (nothing in its session storage); any CSP violation or script error fails the test."""
    width, height = getattr(request, "param", (1280, 900))
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not EXPECTED_CONSOLE.search(message.text)
            else None
        ),
    )
    yield tab
    context.close()
    assert problems == []


def screenshot(tab: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def sign_in(tab: Page, console: Console, key: str | None = None) -> None:
    """Signs in through the form; with the stack's own key, waits until the jobs view is shown."""
    tab.goto(console.url)
    tab.get_by_label("API key").fill(key or console.key.api_key)
    tab.get_by_role("button", name="Sign in").click()
    if key is None:
        expect(tab.get_by_role("heading", name="Jobs")).to_be_visible()
