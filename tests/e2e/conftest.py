"""Browser fixtures: Debian's headless Chromium driven by Playwright against the live server.

The browser is the distribution's `/usr/bin/chromium` (Playwright's own downloads are never
used). With CI=true a missing Chromium or Playwright fails the test; elsewhere it skips.
Screenshots of every step land in test-artifacts/browser/.
"""

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.staff_login import current_code

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
PASSWORD = "correct horse battery staple 7"
TIMEOUT_MS = 10_000


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: browser tests must run in CI (apt-get install -y chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module.

    Playwright's sync API keeps an asyncio loop registered as running on this thread until it
    stops, which makes Django refuse ORM calls from the test body; the flag that allows them is
    set only while the browser is up, and the loop is stopped before the next module's tests.
    """
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (requirements-dev.txt)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser, transactional_db, live_server):
    """A fresh browser profile (no cookies) pointed at the live server; downloads accepted.

    The live server commits, so the test runs on the transactional database; the audit rows
    it commits are cleared before the flush by tests/conftest.py's autouse fixture.
    """
    context = browser.new_context(
        base_url=live_server.url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/browser/, created (gitignored; CI keeps it as the run's artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def shot(page, request, artifacts):
    """shot("step") saves a full-page screenshot named after the test and the step."""
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    taken = []

    def take(step: str) -> Path:
        taken.append(step)
        path = artifacts / f"{test_name}-{len(taken):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def staff_member(django_user_model):
    """make(username, group) -> (staff user in the seeded group, its confirmed authenticator);
    with enrolled=False the user has none yet (their first sign-in enrols one)."""

    def make(username: str, group: str, *, enrolled: bool = True):
        user = django_user_model.objects.create_user(
            username=username, email=f"{username}@example.com", password=PASSWORD, is_staff=True
        )
        user.groups.add(Group.objects.get(name=group))
        if not enrolled:
            return user, None
        device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        return user, device

    return make


@pytest.fixture
def submit_password(page, shot):
    """submit_password(user): the admin login page's first step, username and password."""

    def submit(user) -> None:
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", user.get_username())
        page.fill("#id_password", PASSWORD)
        shot("login")
        page.click("input[type=submit]")

    return submit


@pytest.fixture
def sign_in(page, shot, submit_password):
    """sign_in(user, device): the admin login as a person does it, password then the code."""
    from playwright.sync_api import expect

    def login(user, device) -> None:
        submit_password(user)
        page.wait_for_url(re.compile(r"/admin/2fa/verify/"))
        page.fill("#id_token", current_code(device))
        shot("second-factor")
        page.click("#second-factor-form input[type=submit]")
        page.wait_for_url(re.compile(r"/admin/$"))
        expect(page.locator("#user-tools")).to_contain_text(user.get_username())
        shot("signed-in")

    return login
