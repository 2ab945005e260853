"""The people-and-access pages in Chromium on a team workspace: a site admin signs in through
the form and adds a user; the sign-in, admin, account and members pages fit a phone and a
desktop in both themes, with nothing sticking out (the sweep's checks).

``MODELYARD_SHOTS=<folder>`` also saves a full-page screenshot of every page measured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from modelyard.app import create_app
from modelyard.settings import Settings
from tests.browser.test_overflow_sweep import _problems, _resize, _visit
from tests.conftest import ServerThread, scratch_postgres
from tests.team import PASSWORD, PROJECT, build_team

WIDTHS = (390, 1440)
THEMES = ("light", "dark")


@pytest.fixture(scope="module")
def team_portal(tmp_path_factory: pytest.TempPathFactory, pg_template: str | None) -> Iterator[str]:
    """A server on a team workspace (tests/team.py): its base URL."""
    data = tmp_path_factory.mktemp("team")
    with ExitStack() as stack:
        url = None
        if pg_template is not None:
            url = stack.enter_context(scratch_postgres("team_", pg_template))
        app = create_app(Settings(data_dir=data, database_url=url))
        stack.callback(app.state.store.engine.dispose)
        build_team(app)
        yield stack.enter_context(ServerThread(app)).url


def open_tab(context: BrowserContext, errors: list[str]) -> Page:
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return tab


def sign_in(tab: Page, who: str) -> None:
    """Through the sign-in form, as a person does."""
    tab.goto("/sign-in", wait_until="domcontentloaded")
    tab.get_by_label("User name").fill(who)
    tab.get_by_label("Password").fill(PASSWORD)
    with tab.expect_navigation(wait_until="load"):
        tab.get_by_role("button", name="Sign in").click()
    assert tab.url.endswith("/"), tab.url


def measure(tab: Page, label: str, theme: str) -> list[str]:
    """The page as it is at each width (widening only), screenshots when asked for."""
    shots = os.environ.get("MODELYARD_SHOTS")
    found = []
    for width in WIDTHS:
        _resize(tab, width)
        found += _problems(tab, f"{label} at {width} px")
        if shots:
            tab.screenshot(path=f"{shots}/{label}-{width}-{theme}.png", full_page=True)
    return found


def test_an_admin_signs_in_and_adds_a_user(browser: Browser, team_portal: str) -> None:
    context = browser.new_context(base_url=team_portal, viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    tab = open_tab(context, errors)
    try:
        sign_in(tab, "admin")
        tab.get_by_role("link", name="Admin", exact=True).click()
        tab.wait_for_url("**/admin/users")
        form = tab.locator("#add-user")
        form.get_by_label("User name").fill("grace")
        form.get_by_label("Display name").fill("Grace Hopper")
        form.get_by_label("E-mail").fill("grace@example.org")
        form.get_by_label("Password", exact=True).fill("compilers rule")
        with tab.expect_navigation(wait_until="load"):
            form.get_by_role("button", name="Add user").click()
        assert tab.url.endswith("/admin/users")
        row = tab.locator('tr[data-user="grace"]')
        assert "Grace Hopper" in row.inner_text()
        assert "active" in row.inner_text()
    finally:
        context.close()
    assert not errors, errors


@pytest.mark.parametrize("theme", THEMES)
def test_access_pages_fit_a_phone_and_a_desktop(
    browser: Browser, team_portal: str, theme: str
) -> None:
    context = browser.new_context(base_url=team_portal, color_scheme=theme)  # type: ignore[arg-type]
    errors: list[str] = []
    tab = open_tab(context, errors)
    problems: list[str] = []
    try:
        _visit(tab, "/sign-in")
        problems += measure(tab, "sign-in", theme)
        sign_in(tab, "admin")
        pages = {
            "admin-users": "/admin/users",
            "admin-groups": "/admin/groups",
            "me": "/me",
            "members": f"/members/{PROJECT}",
            "activity": "/activity?actor=admin",
        }
        for label, url in pages.items():
            _visit(tab, url)
            problems += measure(tab, label, theme)
        _visit(tab, "/admin/tokens")
        form = tab.locator("#create-token")
        form.get_by_label("For user").select_option("editor")
        form.get_by_label("Name").fill(f"continuous-integration-{theme}")
        form.get_by_label("Expires after (days)").fill("90")
        with tab.expect_navigation(wait_until="load"):
            form.get_by_role("button", name="Create token").click()
        secret = tab.locator(".token-secret").inner_text()
        assert secret.startswith("myd_")
        tab.set_viewport_size({"width": WIDTHS[0], "height": 900})
        problems += measure(tab, "admin-tokens-new-secret", theme)
    finally:
        context.close()
    assert not errors, errors
    assert not problems, f"{len(problems)} layout problems:\n" + "\n".join(problems)
