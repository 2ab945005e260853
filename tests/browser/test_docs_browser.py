"""The API link opens a reference that renders the server's OpenAPI 3.1 document offline."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_api_docs_list_operations_and_expand_one(page: Page) -> None:
    page.goto("/")
    page.get_by_role("link", name="API", exact=True).click()
    expect(page).to_have_url("/docs")
    docs = page.locator("#api-docs")
    expect(docs.get_by_text("Unable to render this definition")).to_have_count(0)
    # The viewer parses a large document: give a busy machine time before judging.
    expect(docs.locator(".info .title")).to_contain_text("modelyard", timeout=30_000)
    operations = docs.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 30
    search = docs.locator(".opblock-summary-path", has_text="/api/v1/runs/search").first
    search.click()
    opened = docs.locator(".opblock.is-open").first
    expect(
        opened.locator(".opblock-description-wrapper, .parameters-container").first
    ).to_be_visible()
    expect(opened.get_by_role("button", name="Try it out")).to_be_visible()
