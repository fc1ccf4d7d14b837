"""Driving the console in a real browser: Debian's ``chromium`` through the Python ``playwright``
package (no browser download: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 at install; the executable path
is given), against a real console server on loopback.

Every page event is watched: a JavaScript exception, a console error or a 5xx answer fails the
test; a 4xx answer fails it unless the step that caused it said it expects one (a refused
publish, a bad import), so an unexpected refusal cannot hide behind "the browser logs 4xx".
Screenshots go to ``var/screenshots/`` (kept as test artefacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(os.environ.get("IVR_SCREENSHOTS", "var/screenshots"))
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Debian's chromium is not installed (scripts/apt-packages.txt; "
                "scripts/bootstrap.sh installs it)")


@dataclass
class Watch:
    """What went wrong in the page, and which 4xx answers the test expects right now."""

    errors: list[str] = field(default_factory=list)
    expected: set[tuple[str, int]] = field(default_factory=set)  # (path suffix, status)
    seen_expected: list[tuple[str, int]] = field(default_factory=list)

    def on_console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        text = msg.text
        # Chromium logs every 4xx/5xx fetch as "Failed to load resource"; on_response judges
        # those by their URL and status instead.
        if text.startswith("Failed to load resource: the server responded with a status of 4"):
            return
        self.errors.append(f"console: {text}")

    def on_page_error(self, exc: Any) -> None:
        self.errors.append(f"page error: {exc}")

    def on_response(self, resp: Any) -> None:
        status = resp.status
        if status < 400:
            return
        path = resp.url.split("?")[0]
        for suffix, code in self.expected:
            if path.endswith(suffix) and code == status:
                self.seen_expected.append((suffix, code))
                return
        self.errors.append(f"HTTP {status} {resp.request.method} {resp.url}")

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)


@asynccontextmanager
async def browser_page(locale: str = "en-US") -> AsyncIterator[tuple[Any, Watch]]:
    from playwright.async_api import async_playwright, expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before the browser
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(),
                                           args=["--no-sandbox", "--disable-gpu"])
        context = await browser.new_context(viewport=VIEWPORT, locale=locale)
        page = await context.new_page()
        page.set_default_timeout(20_000)  # generous: the suite shares two cores
        expect.set_options(timeout=15_000)
        watch = Watch()
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_page_error)
        page.on("response", watch.on_response)
        try:
            yield page, watch
        except BaseException as e:
            await page.screenshot(path=str(SCREENSHOTS / "failure.png"))
            if watch.errors:  # what the page said is usually why the step failed
                e.add_note("page errors:\n" + "\n".join(watch.errors))
            raise
        finally:
            await context.close()
            await browser.close()


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def login(page: Any, base: str, username: str, password: str) -> None:
    await page.goto(base + "/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("header.top")


async def logout(page: Any) -> None:
    """Log out and wait for the login form: navigating away at once (the next ``login``) could
    abort the logout request, leaving the browser with cookies of a session the server ended
    (a 401) or still logged in."""
    await page.click("#logout")
    await page.wait_for_selector("input[name=username]")


async def untranslated(page: Any) -> list[str]:
    """Catalog keys that showed instead of text (a missing key renders as ⟦key⟧), and values
    that leaked as words ("null", "undefined", "[object Object]")."""
    text = await page.inner_text("body")
    leaks = ("null", "undefined", "[object Object]", "NaN")
    return [line for line in text.splitlines()
            if "⟦" in line or line.strip() in leaks or "[object Object]" in line]
