"""Browser tests: the portal served by a real server on the demo workspace, driven in Debian's
Chromium through Playwright (``MODELYARD_CHROMIUM`` names another binary)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from modelyard.app import create_app
from modelyard.demo import build_demo
from modelyard.sdk.client import Client
from modelyard.settings import Settings
from tests.conftest import ServerThread, scratch_postgres

T = TypeVar("T")
CHROMIUM = os.environ.get("MODELYARD_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}; `apt-get install chromium`")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory, pg_template: str | None) -> Iterator[str]:
    """A server on a freshly built demo workspace; yields its base URL."""
    with serve_workspace(tmp_path_factory, pg_template, build_demo) as (url, _):
        yield url


@contextmanager
def serve_workspace(
    tmp_path_factory: pytest.TempPathFactory,
    pg_template: str | None,
    build: Callable[[Client], T],
    name: str = "portal",
) -> Iterator[tuple[str, T]]:
    """A server on a fresh database (PostgreSQL when the suite runs on it) holding the
    workspace ``build`` makes through the SDK: its base URL and what ``build`` returned."""
    data = tmp_path_factory.mktemp(name)
    with ExitStack() as stack:
        url = None
        if pg_template is not None:
            url = stack.enter_context(scratch_postgres(f"{name}_", pg_template))
        app = create_app(Settings(data_dir=data, database_url=url))
        stack.callback(app.state.store.engine.dispose)
        server = stack.enter_context(ServerThread(app))
        with Client(server.url) as client:
            built = build(client)
        yield server.url, built


class Problems(list[str]):
    """Console errors and uncaught exceptions a page produced, less those a test expects."""

    def __init__(self) -> None:
        super().__init__()
        self.expected: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        """A console error the test causes on purpose (e.g. a page answering 400)."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [p for p in self if not any(e.search(p) for e in self.expected)]


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def page(browser: Browser, portal: str, problems: Problems) -> Iterator[Page]:
    """A fresh tab on the portal; the test fails if the page logs an error or throws."""
    context = browser.new_context(base_url=portal, viewport={"width": 1400, "height": 900})
    tab = context.new_page()

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.append(f"console error on {tab.url}: {msg.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: problems.append(f"uncaught on {tab.url}: {exc}"))
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
    assert not problems.unexpected(), "\n".join(problems.unexpected())
