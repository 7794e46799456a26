"""The web page in Debian's headless Chromium (Playwright): log in, block a number, see the
blocked call appear; the auditor's charts render; no CSP violation, nothing off-host."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from reputation.records import NewVoicemail

from .conftest import ALICE_TN, Env
from .test_isolation import write_wav

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = Path("/tmp")

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: install the Debian package 'chromium'")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def open_page(browser: Any, env: Env) -> tuple[Any, list[str]]:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []

    def check_console(m: Any) -> None:
        # Failed requests are judged by check_response, which knows their URL.
        if m.type in ("error", "warning") and not m.text.startswith("Failed to load resource"):
            problems.append(m.text)

    def check_response(resp: Any) -> None:
        # The page asks GET /api/v1/session on load: 401 there just means "not logged in".
        if resp.status >= 400 and not (resp.status == 401 and resp.url.endswith("/session")):
            problems.append(f"{resp.status} {resp.request.method} {resp.url}")

    page.on("console", check_console)
    page.on("response", check_response)
    page.on("pageerror", lambda e: problems.append(str(e)))
    host = urlsplit(env.url("/")).hostname

    def check_request(req: Any) -> None:
        if urlsplit(req.url).hostname not in (host, None, ""):
            problems.append(f"off-host request {req.url}")

    page.on("request", check_request)
    await page.goto(env.url("/"))
    return page, problems


async def test_login_block_and_see_the_blocked_call(env: Env, browser: Any) -> None:
    page, problems = await open_page(browser, env)
    await page.fill("#token", env.tokens["alice"])
    await page.click("#login-token-submit")
    await page.wait_for_selector("#view-calls:not([hidden])")
    assert await page.text_content("#who-name") == "alice"
    await page.click("#tab-lists")
    await page.fill("#block-number", "+1 555 867 5309")
    await page.fill("#block-note", "keeps calling about my car warranty")
    await page.click("#block-add")
    await page.wait_for_selector("#block-entries li[data-entry-id]")
    assert "+15558675309" in await page.text_content("#block-entries")
    # The list change is live for the very next call.
    hit = env.store.match(env.users["alice"].id, "15558675309", time.time())
    assert hit is not None
    # The proxy would now reject the call; record it as it does, through the store.
    env.record_call("alice", "15558675309", action="reject", score=99.0)
    env.record_call("alice", "15557770001", action="forward", score=8.0)
    await env.flush()
    await page.click("#tab-calls")
    await page.click("#calls-refresh")
    row = page.locator("#calls tr.action-reject")
    await row.wait_for()
    text = await row.text_content()
    assert "+15558675309" in text and "reject" in text and "on your block list" in text
    assert await page.locator("#calls tr").count() == 2
    # Report the allowed call as spam from the page (CSRF-protected POST with the cookie).
    await page.locator("#calls tr.action-forward button", has_text="Spam").click()
    await page.wait_for_selector("#calls tr.action-forward .badge.bad")
    await page.screenshot(path=str(SHOTS / "spitwall-calls.png"), full_page=True)
    await page.click("#tab-lists")
    await page.screenshot(path=str(SHOTS / "spitwall-lists.png"), full_page=True)
    # A voicemail plays from the page (the <audio> element fetches it with the cookie).
    rel = f"voicemail/{ALICE_TN}/20260101T000000Z-15557770001-aa.wav"
    size = write_wav(env.data_dir / rel, 0.5)
    vm = await env.store.add_voicemail(
        NewVoicemail(env.users["alice"].id, "15557770001", time.time(), 0.5, rel, size)
    )
    await page.click("#tab-voicemail")
    audio = page.locator("#voicemails audio")
    await audio.wait_for()
    src = await audio.get_attribute("src")
    assert src == f"/api/v1/me/voicemails/{vm.id}/audio"  # type: ignore[union-attr]
    resp = await page.request.get(env.url(src))
    assert resp.status == 200 and resp.headers["content-type"] == "audio/wav"
    assert await resp.body() == (env.data_dir / rel).read_bytes()
    assert not problems, problems


async def test_auditor_sees_charts_and_searches(env: Env, browser: Any) -> None:
    page, problems = await open_page(browser, env)
    await page.fill("#token", env.tokens["audrey"])
    await page.click("#login-token-submit")
    await page.wait_for_selector("#view-audit:not([hidden])")
    assert await page.is_hidden("#tab-calls")
    await page.wait_for_selector("#chart-verstat svg rect")
    assert await page.locator("#chart-attest svg rect").count() > 3
    await page.wait_for_selector("#audit-rows tr")
    assert await page.locator("#audit-rows tr").count() == 50
    await page.select_option("#audit-search select[name=action]", "reject")
    await page.click("#audit-search button[type=submit]")
    # (not wait_for_function: the page's CSP rightly forbids evaluating strings)
    await expect(page.locator("#audit-rows tr")).to_have_count(12)
    await page.locator("#audit-rows tr").first.click()
    await page.wait_for_selector("#audit-detail:not([hidden])")
    assert "passport_claims" in await page.text_content("#audit-detail")
    await page.click("#audit-verify")
    await page.wait_for_selector("#verify-result.ok-text")
    await page.screenshot(path=str(SHOTS / "spitwall-audit.png"), full_page=True)
    assert not problems, problems


async def test_password_login_and_logout(env: Env, browser: Any) -> None:
    page, problems = await open_page(browser, env)
    await page.fill("#login-name", "bob")
    await page.fill("#login-pass", "wrong password")
    await page.click("#login-password button")
    await page.wait_for_selector("#login-error:not([hidden])")
    await page.fill("#login-pass", "bob-password-1")
    await page.click("#login-password button")
    await page.wait_for_selector("#view-calls:not([hidden])")
    cookies = await page.context.cookies()
    c = next(c for c in cookies if c["name"] == "spitwall_session")
    assert c["httpOnly"] and c["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""
    await page.click("#logout")
    await page.wait_for_selector("#login:not([hidden])")
    await page.reload()
    await page.wait_for_selector("#login:not([hidden])")
    # The wrong password's 401 on POST /session is the only failed request.
    assert not problems, problems
