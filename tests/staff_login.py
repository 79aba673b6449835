"""Signing staff in the way the admin demands: password session plus a verified second factor.

The second step goes through the real verification page with a real TOTP code, so admin tests
exercise the same path a staff member's browser does.
"""

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def staff_login(client, user):
    """Log `user` in on `client` with a confirmed authenticator verified in the session."""
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)
    else:
        # A TOTP code is accepted once; a second login in the same 30 s needs a fresh window.
        device.last_t = -1
        device.throttle_reset(commit=False)
        device.save()
    response = client.post("/admin/2fa/verify/", {"token": current_code(device), "next": "/"})
    assert response.status_code == 302, "second-factor verification failed"
    return client
