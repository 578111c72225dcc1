"""A real headless Chromium for the tests of the web pages: one page that records its console errors and
every request it makes (the Playwright driver is the fixture ``playwright``, in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]


class Browser:
    """One Chromium page that records console errors, every request it makes and every answer of 400 or
    more (as "STATUS URL")."""

    def __init__(self, playwright: Any, width: int = 1280, height: int = 860) -> None:
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        self.context = self.browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def shot(self, name: str) -> None:
        """Save a full-page screenshot as a test artifact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        self.browser.close()

    def assert_clean(self, origin: str) -> None:
        """No console error, and not one request left ``origin``."""
        assert not self.errors, self.errors
        assert self.requests and all(url.startswith(origin) for url in self.requests), [
            url for url in self.requests if not url.startswith(origin)
        ]
