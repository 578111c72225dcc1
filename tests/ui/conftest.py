"""The Playwright driver for the tests of the web pages, over the real Chromium that ./scripts/services
installs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.browser import CHROMIUM


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} is missing: run ./scripts/services")
    with sync_playwright() as driver:
        yield driver
