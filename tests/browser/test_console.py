"""The console as a person uses it, in Chromium, against the local stack: sign in, submit, watch, play, filter."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Console, screenshot, sign_in

JOB_TIMEOUT_MS = 90_000
PHONE = (390, 844)


def wait_for_jobs(console: Console, job_ids: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while {console.api.get(j)["status"] for j in job_ids} & {"submitting", "queued", "running", "archiving"}:
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.5)


def test_sign_in_submit_watch_it_succeed_and_play_the_video(page: Page, console_stack: Console) -> None:
    sign_in(page, console_stack)
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()

    page.get_by_role("link", name="New job").click()
    page.get_by_label("Provider", exact=True).select_option("kie")
    page.get_by_label("Prompt", exact=True).fill("a red fox running through fresh snow at dawn")
    page.get_by_label("Sound").check()
    page.get_by_role("button", name="Submit job").click()

    expect(page).to_have_url(re.compile(r"#/jobs/job_"), timeout=15_000)
    job_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#job-state .badge")).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS)
    video = page.locator("#job-outputs video")
    expect(video).to_have_count(1)
    page.wait_for_function(
        "() => { const v = document.querySelector('#job-outputs video'); return v && v.readyState >= 2 }",
        timeout=30_000,
    )
    ready_state, duration = page.evaluate(
        "() => { const v = document.querySelector('#job-outputs video'); return [v.readyState, v.duration] }"
    )
    assert ready_state >= 2
    assert duration > 0
    # The attempts and the timeline come from the job's own fields.
    expect(page.locator("#attempts tbody tr")).to_have_count(1)
    expect(page.locator("#attempts")).to_contain_text("accepted")
    expect(page.locator("#timeline")).to_contain_text("Submitted")
    expect(page.locator("#timeline")).to_contain_text("succeeded (by callback)")
    expect(page.locator("#cancel")).to_have_count(0)  # a finished job cannot be canceled
    screenshot(page, "job-succeeded")

    stored = console_stack.api.get(job_id)
    assert stored["status"] == "succeeded"
    assert stored["request"]["sound"] is True
    # The key lives in this tab's session storage only: not in the address, a cookie or local storage.
    assert page.evaluate("() => sessionStorage.getItem('kling-relay.api-key')") == console_stack.key.api_key
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""
    assert console_stack.key.api_key not in page.url


def test_the_table_filters_by_provider_and_status_and_refreshes_itself(page: Page, console_stack: Console) -> None:
    pixwith = console_stack.api.submit({"prompt": "a lighthouse in a storm", "provider": "pixwith"})["id"]
    vidgo = console_stack.api.submit({"prompt": "a paper boat on a river", "provider": "vidgo"})["id"]
    sign_in(page, console_stack)

    page.get_by_label("Provider", exact=True).select_option("pixwith")
    rows = page.locator("#jobs-table tbody tr")
    expect(rows.filter(has_text=pixwith)).to_have_count(1)
    expect(rows.filter(has_text=vidgo)).to_have_count(0)
    for provider in rows.locator("td[data-label='Provider']").all_inner_texts():
        assert provider == "pixwith"
    assert "provider=pixwith" in page.url  # the filter (never the key) is in the address

    # Live refresh: the row reaches succeeded without a reload, and the change is announced.
    expect(page.locator(f"tr[data-job-id='{pixwith}'] .badge")).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#jobs-summary")).to_have_attribute("aria-live", "polite")

    page.get_by_label("Provider", exact=True).select_option("")
    page.get_by_label("Status").select_option("succeeded")
    wait_for_jobs(console_stack, [vidgo])
    expect(rows.filter(has_text=vidgo)).to_have_count(1, timeout=15_000)
    for status in rows.locator("td[data-label='Status']").all_inner_texts():
        assert status == "succeeded"
    expected = {job["id"] for job in console_stack.api.list(status="succeeded", limit=100)["items"]}
    shown = set(rows.evaluate_all("rows => rows.map(r => r.dataset.jobId)"))
    assert shown == expected
    screenshot(page, "jobs-filtered")


def test_a_bad_key_gets_a_clear_message_and_is_not_kept(page: Page, console_stack: Console) -> None:
    sign_in(page, console_stack, key="kr_this_key_does_not_exist_0000000000")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("This API key was not accepted")
    assert page.evaluate("() => sessionStorage.length") == 0
    expect(page.get_by_label("API key")).to_be_focused()
    screenshot(page, "bad-key")


def test_fields_the_provider_cannot_honour_are_disabled_and_422_details_sit_beside_the_field(
    page: Page, console_stack: Console
) -> None:
    sign_in(page, console_stack)
    page.get_by_role("link", name="New job").click()
    provider = page.get_by_label("Provider", exact=True)

    provider.select_option("vidgo")
    expect(page.get_by_label("Negative prompt")).to_be_disabled()
    expect(page.get_by_label("CFG scale (0 to 1)")).to_be_disabled()
    expect(page.locator("#negative_prompt-hint")).to_have_text("Not offered by vidgo.")
    provider.select_option("auto")
    expect(page.get_by_label("Negative prompt")).to_be_enabled()

    # APIMart makes sound only at quality=pro: the form allows the box, the API names the field.
    provider.select_option("apimart")
    page.get_by_label("Prompt", exact=True).fill("a storm over the sea")
    page.get_by_label("Sound").check()
    page.get_by_role("button", name="Submit job").click()
    error = page.locator("#sound-error")
    expect(error).to_contain_text("quality=pro")
    expect(page.get_by_label("Sound")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"#/submit$"))
    screenshot(page, "submit-422")


def answer_usage(page: Page, console: Console, status: int, body: dict[str, Any]) -> None:
    """The browser gets this answer to `GET /v1/usage` instead of the local API's (another deployment's)."""
    origin = console.url.rstrip("/")

    def answer(route: Route) -> None:
        route.fulfill(
            status=status,
            content_type="application/json",
            headers={"Access-Control-Allow-Origin": origin, "Vary": "Origin"},
            body=json.dumps(body),
        )

    page.route(re.compile(r".*/v1/usage$"), answer)


def test_usage_shows_the_tenants_limits_and_use_from_the_api(page: Page, console_stack: Console) -> None:
    sign_in(page, console_stack)
    page.get_by_role("link", name="Usage").click()

    usage = console_stack.api.usage()
    expect(page.get_by_text(f"Active jobs: {usage['active_jobs']}")).to_be_visible()
    table = page.locator("#usage-table")
    expect(table).to_contain_text("limits.tier")
    expect(table).to_contain_text(str(usage["limits"]["tier"]))
    expect(table).to_contain_text("requests.used")


def test_usage_says_when_the_api_has_none(page: Page, console_stack: Console) -> None:
    # A deployment from before usage reporting answers 404.
    answer_usage(page, console_stack, 404, {"error": {"code": "not_found", "message": "no such route"}})
    sign_in(page, console_stack)
    page.get_by_role("link", name="Usage").click()

    expect(page.locator("#usage-unavailable")).to_contain_text("Usage is not available on this deployment")


def test_usage_is_charted_when_the_api_reports_it(page: Page, console_stack: Console) -> None:
    usage = {
        "active_jobs": 3,
        "limits": {"max_active_jobs": 10, "monthly_credits": 5000},
        "credits_this_month": {"kie": 120.5, "vidgo": 40, "apimart": 300},
        "requests_this_month": 812,
    }
    answer_usage(page, console_stack, 200, usage)
    sign_in(page, console_stack)
    page.get_by_role("link", name="Usage").click()

    chart = page.locator("#usage-chart")
    expect(chart).to_have_attribute("aria-label", re.compile(r"kie 120\.5, vidgo 40, apimart 300"))
    expect(chart.locator("rect")).to_have_count(3)
    widths = chart.locator("rect").evaluate_all("bars => bars.map(b => Number(b.getAttribute('width')))")
    assert widths[2] == max(widths)  # the largest figure has the longest bar
    expect(page.locator("#usage-table")).to_contain_text("limits.monthly_credits")
    expect(page.get_by_text("Active jobs: 3")).to_be_visible()
    screenshot(page, "usage-chart")


def test_cancel_from_the_job_page(page: Page, console_stack: Console) -> None:
    # A long job on a provider without callbacks: it is still running when canceled.
    emulator = console_stack.stack.emulator
    assert emulator is not None
    emulator.set_job_seconds(600, provider="aimlapi")
    try:
        job = console_stack.api.submit({"prompt": "a slow sunrise", "provider": "aimlapi"})
        console_stack.api.wait_dispatched(job["id"])  # the provider's task is made at dispatch
    finally:
        emulator.set_job_seconds(2.0, provider="aimlapi")
    sign_in(page, console_stack)
    page.goto(f"{console_stack.url}#/jobs/{job['id']}")

    page.get_by_role("button", name="Cancel job").click()
    page.get_by_role("button", name="Yes, cancel it").click()

    expect(page.locator("#job-state .badge")).to_have_text("canceled")
    assert console_stack.api.get(job["id"])["status"] == "canceled"


def test_keyboard_only_sign_in_and_navigation(page: Page, console_stack: Console) -> None:
    page.goto(console_stack.url)
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(console_stack.key.api_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Jobs")).to_be_focused()

    page.keyboard.press("Shift+Tab")  # back through the header: the last link before the view is Sign out
    focused = page.evaluate("() => document.activeElement.textContent")
    assert focused == "Sign out"
    # Every control has a visible focus indicator.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_usable_at_phone_width(page: Page, console_stack: Console) -> None:
    console_stack.api.submit({"prompt": "a kite over a beach", "provider": "kie"})
    sign_in(page, console_stack)
    expect(page.locator("#jobs-table tbody tr").first).to_be_visible()

    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # Nothing scrolls sideways inside the table either: every cell fits the phone's width.
    table_overflow = page.evaluate(
        "() => { const w = document.querySelector('.table-wrap'); return w.scrollWidth - w.clientWidth }"
    )
    assert table_overflow <= 0
    header_hidden = page.evaluate(
        "() => document.querySelector('#jobs-table thead').getBoundingClientRect().height <= 1"
    )
    assert header_hidden  # rows are cards, each cell labelled
    screenshot(page, "jobs-phone")
    page.get_by_role("link", name="New job").click()
    expect(page.get_by_role("button", name="Submit job")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_the_key_leaves_with_sign_out(page: Page, console_stack: Console) -> None:
    sign_in(page, console_stack)
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
