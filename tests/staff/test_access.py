"""Staff access: a second factor in every session, throttled sign-in, bounded sessions."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from prometheus_client import REGISTRY

from staff.middleware import SEEN_KEY, STARTED_KEY

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple-42"


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user(username="fiona", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return user


@pytest.fixture
def staff_with_device(staff):
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    return staff, device


def sign_in(client, username="fiona", password=PASSWORD):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_password_alone_does_not_open_the_admin(client, staff_with_device):
    response = sign_in(client)
    assert response.status_code == 302
    assert response["Location"] == "/admin/2fa/verify/?next=%2Fadmin%2F"
    # Even going straight to an admin page, the session is not enough without the code.
    index = client.get("/admin/")
    assert index.status_code == 302
    follow = client.get(index["Location"])
    assert follow.status_code == 302 and follow["Location"].startswith("/admin/2fa/verify/")


def test_wrong_code_is_refused_and_counted_then_right_code_opens_admin(client, staff_with_device):
    _, device = staff_with_device
    sign_in(client)
    before = metric("tollgate_staff_second_factor_failures_total")
    wrong = client.post("/admin/2fa/verify/", {"token": "000000", "next": "/admin/"})
    assert wrong.status_code == 200
    assert b"not valid" in wrong.content
    assert metric("tollgate_staff_second_factor_failures_total") == before + 1
    assert client.get("/admin/").status_code == 302
    device.refresh_from_db()
    device.throttle_reset()  # a wrong code throttles the device for a second
    right = client.post("/admin/2fa/verify/", {"token": current_code(device), "next": "/admin/"})
    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_redirect_after_verification_stays_on_this_site(client, staff_with_device):
    _, device = staff_with_device
    sign_in(client)
    response = client.post(
        "/admin/2fa/verify/", {"token": current_code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/admin/"


def test_new_staff_member_enrols_and_gets_single_use_backup_codes(client, staff):
    response = sign_in(client)
    verify = client.get(response["Location"])
    assert verify.status_code == 302 and verify["Location"].startswith("/admin/2fa/enroll/")
    page = client.get(verify["Location"])
    assert page.status_code == 200 and b"totp-secret" in page.content
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    done = client.post("/admin/2fa/enroll/", {"token": current_code(device), "next": "/admin/"})
    assert done.status_code == 200
    codes = list(StaticToken.objects.filter(device__user=staff).values_list("token", flat=True))
    assert len(codes) == 10
    for code in codes:
        assert code.encode() in done.content
    assert client.get("/admin/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed

    # A backup code opens a new session once, and never again.
    other = client.__class__()
    sign_in(other)
    ok = other.post("/admin/2fa/verify/", {"token": codes[0], "next": "/admin/"})
    assert ok.status_code == 302 and other.get("/admin/").status_code == 200
    third = client.__class__()
    sign_in(third)
    reused = third.post("/admin/2fa/verify/", {"token": codes[0], "next": "/admin/"})
    assert reused.status_code == 200 and third.get("/admin/").status_code == 302


def test_customers_cannot_reach_the_second_factor_pages(client, django_user_model):
    django_user_model.objects.create_user(username="carol", password=PASSWORD)
    client.post("/admin/login/", {"username": "carol", "password": PASSWORD})
    response = client.get("/admin/2fa/enroll/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not TOTPDevice.objects.exists()


def test_repeated_failures_lock_the_account_and_are_counted(client, staff_with_device, settings):
    failures_before = metric("tollgate_staff_login_failures_total")
    lockouts_before = metric("tollgate_staff_lockouts_total")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, password="wrong-password")
    locked = sign_in(client)  # the right password no longer helps
    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/problem+json"
    assert locked.json()["type"].endswith("/login-locked-out")
    assert (
        metric("tollgate_staff_login_failures_total")
        >= failures_before + settings.AXES_FAILURE_LIMIT
    )
    assert metric("tollgate_staff_lockouts_total") >= lockouts_before + 1


def test_a_lockout_ends_by_itself_after_the_cooloff(client, staff_with_device, settings):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, password="wrong-password")
    cooloff = settings.AXES_COOLOFF_TIME
    assert cooloff.total_seconds() == 900  # AXES_COOLOFF_SECONDS' documented default
    assert AccessAttempt.objects.exists()
    # The clock is the database's: the failures are made older instead of waiting.
    AccessAttempt.objects.update(attempt_time=timezone.now() - cooloff + timedelta(seconds=60))
    assert sign_in(client).status_code == 429  # a minute before the end: still locked
    AccessAttempt.objects.update(attempt_time=timezone.now() - cooloff - timedelta(seconds=1))
    response = sign_in(client)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/2fa/verify/")


def test_repeated_unknown_names_throttle_the_address_but_not_real_accounts(
    client, django_user_model, settings
):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, username=f"nobody-{n}", password="guess")
    assert sign_in(client, username="nobody-else", password="guess").status_code == 429
    django_user_model.objects.create_user(username="fresh", password=PASSWORD, is_staff=True)
    response = sign_in(client, username="fresh")
    assert response.status_code == 302 and response["Location"].startswith("/admin/2fa/")


def test_idle_staff_session_ends(client, staff_with_device, settings):
    user, _ = staff_with_device
    client.force_login(user)
    session = client.session
    session[STARTED_KEY] = int(time.time())
    session[SEEN_KEY] = int(time.time()) - settings.STAFF_SESSION_IDLE_SECONDS - 5
    session.save()
    client.get("/healthz")
    assert "_auth_user_id" not in client.session


def test_staff_session_has_an_absolute_lifetime(client, staff_with_device, settings):
    user, _ = staff_with_device
    client.force_login(user)
    session = client.session
    session[STARTED_KEY] = int(time.time()) - settings.STAFF_SESSION_MAX_SECONDS - 5
    session[SEEN_KEY] = int(time.time())
    session.save()
    client.get("/healthz")
    assert "_auth_user_id" not in client.session


def test_password_change_ends_other_sessions(client, staff_with_device):
    user, _ = staff_with_device
    client.force_login(user)
    user.set_password("another-long-passphrase-77")
    user.save()
    client.get("/healthz")
    assert "_auth_user_id" not in client.session


def test_reset_removes_devices_and_ends_sessions(client, staff_with_device):
    user, _ = staff_with_device
    StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    client.force_login(user)
    call_command("staff_2fa_reset", "fiona", "--reason", "lost phone, ticket 42")
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    client.get("/healthz")
    assert "_auth_user_id" not in client.session


def test_reset_requires_a_reason(staff_with_device):
    user, _ = staff_with_device
    with pytest.raises(CommandError):
        call_command("staff_2fa_reset", "fiona")
    with pytest.raises(CommandError):
        call_command("staff_2fa_reset", "fiona", "--reason", "  ")
    assert TOTPDevice.objects.filter(user=user).exists()


def test_relaxing_the_second_factor_without_debug_fails_the_system_check(settings):
    from staff.checks import second_factor_required_outside_debug

    settings.ADMIN_REQUIRE_2FA = False
    settings.DEBUG = False
    assert [e.id for e in second_factor_required_outside_debug()] == ["staff.E001"]
    settings.DEBUG = True
    assert second_factor_required_outside_debug() == []


def test_the_lockout_answer_says_when_to_retry_from_the_setting(
    client, staff_with_device, settings
):
    from datetime import timedelta

    settings.AXES_COOLOFF_TIME = timedelta(seconds=1234)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, password="wrong-password")
    response = sign_in(client)
    assert response.status_code == 429
    assert response["Retry-After"] == "1234"
