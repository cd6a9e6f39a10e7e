"""Test helpers (not a test module): drive Debian's chromium (apt) with Python playwright, headless.

    from page_browser import browser, collect_errors, offline, skip_unless_browser
    skip_unless_browser()
    with browser() as b:
        context = b.new_context(); page = context.new_page(); errors = collect_errors(page)
        page.goto(url)
        with offline(context):
            page.reload()
        assert errors == []

`playwright install` cannot download its own browser here (no network), so the system chromium is launched by path.
"""
from __future__ import annotations

import contextlib
import os
import shutil

import pytest

SYSTEM_CHROMIUM = "/usr/bin/chromium"

# Headless, no GPU, and none of chromium's background traffic (component updates, sync, safe-browsing lists, QUIC
# probes): on a closed network those calls only retry and slow every test down.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """Debian's chromium, or whatever `chromium` is on PATH; None without one."""
    if os.access(SYSTEM_CHROMIUM, os.X_OK):
        return SYSTEM_CHROMIUM
    return shutil.which("chromium")


def skip_unless_browser() -> None:
    """pytest.skip() the calling test when playwright or chromium is missing, saying which and how to get it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if chromium_path() is None:
        pytest.skip("no chromium (apt-get install chromium); playwright cannot download its own browser offline")


@contextlib.contextmanager
def browser():
    """A headless playwright Browser on the system chromium, closed on exit."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError("no chromium: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def offline(context):
    """The context (all its pages and service workers) offline inside the block, online again after."""
    context.set_offline(True)
    try:
        yield context
    finally:
        context.set_offline(False)


def collect_errors(page) -> list[str]:
    """A list that fills with the page's console errors and uncaught exceptions, as text, while the page lives."""
    errors: list[str] = []

    def console(msg):
        if msg.type == "error":   # with where, so a failing assert names the file (e.g. a 404's URL)
            errors.append(f"console: {msg.text} ({msg.location.get('url') or '?'})")

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    return errors
