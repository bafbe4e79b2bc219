"""The browser the browser tests drive: Debian's chromium (never one Playwright downloads),
headless, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import Browser, Playwright, sync_playwright


@pytest.fixture(scope="module")
def pw() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(pw: Playwright) -> Iterator[Browser]:
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
