"""The client's address behind the load balancer, and who a failed sign-in locks out.

Requests come "through the proxy" the way a load balancer forwards them: REMOTE_ADDR is the
proxy and X-Forwarded-For ends with the address the proxy saw.
"""

import pytest
from django.contrib.auth.models import Group
from django.test import RequestFactory

from audit.models import AuditEvent
from config.client import client_ip, trusted_proxies_parse
from tests.config.test_settings import run_python

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple-42"
PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user(username="fiona", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return user


def sign_in(client, username, password, *, client_address, peer=PROXY):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=peer,
        HTTP_X_FORWARDED_FOR=client_address,
    )


def signed_in(response) -> bool:
    """Password accepted: the admin moves on to the second factor."""
    return response.status_code == 302 and "/admin/2fa/" in response["Location"]


def test_made_up_names_through_the_proxy_do_not_lock_out_staff_behind_it(
    client, staff, behind_proxy, settings
):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"nobody-{n}", "guess", client_address="198.51.100.66")
    # The prober's own address is throttled...
    throttled = sign_in(client, "nobody-else", "guess", client_address="198.51.100.66")
    assert throttled.status_code == 429
    assert throttled.json()["type"].endswith("/login-locked-out")
    # ...while a colleague behind the same proxy signs in.
    assert signed_in(sign_in(client, "fiona", PASSWORD, client_address="198.51.100.77"))


def test_made_up_names_from_a_shared_address_never_lock_a_real_account(client, staff, settings):
    # No trusted proxy: everyone behind one NAT or misconfigured proxy shares REMOTE_ADDR.
    office = {"client_address": "", "peer": "192.0.2.10"}
    for n in range(settings.AXES_FAILURE_LIMIT + 2):
        sign_in(client, f"nobody-{n}", "guess", **office)
    assert sign_in(client, "nobody", "guess", **office).status_code == 429
    assert signed_in(sign_in(client, "fiona", PASSWORD, **office))


def test_a_real_account_locks_after_failures_from_many_clients_and_the_trail_names_each(
    client, staff, behind_proxy, settings
):
    addresses = [f"198.51.100.{n}" for n in range(1, settings.AXES_FAILURE_LIMIT + 1)]
    for address in addresses:
        sign_in(client, "fiona", "wrong-password", client_address=address)
    # Credential stuffing from many addresses: the right password no longer helps, anywhere.
    locked = sign_in(client, "fiona", PASSWORD, client_address="203.0.113.200")
    assert locked.status_code == 429
    failures = AuditEvent.objects.filter(action="auth.login.failed", target_id=str(staff.pk))
    recorded = set(failures.values_list("ip", flat=True))
    assert set(addresses) <= recorded and PROXY not in recorded
    assert AuditEvent.objects.filter(action="auth.login.locked_out", ip__in=addresses).exists()


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(client, staff, settings):
    def failed_sign_in_address(peer):
        sign_in(client, "fiona", "wrong-password", client_address="198.51.100.9", peer=peer)
        # The newest by insertion: inside the test the rows are not sealed (no sequence yet).
        return AuditEvent.objects.filter(action="auth.login.failed").latest("id").ip

    # The default trusts no proxy: the header is never believed.
    assert failed_sign_in_address(PROXY) == PROXY
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert failed_sign_in_address(PROXY) == "198.51.100.9"
    # Straight to the app, not through the proxy: the header is the sender's own invention.
    assert failed_sign_in_address("203.0.113.5") == "203.0.113.5"


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        (PROXY, "198.51.100.9", "198.51.100.9"),
        # Whatever the client wrote before the address the proxy saw is ignored.
        (PROXY, "1.2.3.4, 198.51.100.9", "198.51.100.9"),
        (PROXY, "not-an-address, 198.51.100.9", "198.51.100.9"),
        (PROXY, "2001:db8::7", "2001:db8::7"),
        (PROXY, "", PROXY),
        ("203.0.113.5", "198.51.100.9", "203.0.113.5"),
    ],
)
def test_client_ip_through_one_trusted_proxy(behind_proxy, peer, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_two_hops_are_matched_from_the_app_outwards(settings):
    settings.TRUSTED_PROXIES = ["203.0.113.0/24", "10.0.0.0/24"]  # CDN, then load balancer
    through_both = RequestFactory().get(
        "/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.9, 203.0.113.7"
    )
    assert client_ip(through_both) == "198.51.100.9"
    around_the_cdn = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert client_ip(around_the_cdn) == PROXY


def test_trusted_proxies_must_be_addresses_or_networks():
    assert trusted_proxies_parse(["10.0.0.5/24", " 2001:db8::1 "]) == [
        "10.0.0.0/24",
        "2001:db8::1/128",
    ]
    with pytest.raises(ValueError, match=r"'10\.1'"):
        trusted_proxies_parse(["10.1"])


def test_settings_refuse_a_malformed_trusted_proxy():
    result = run_python(["-c", "import django; django.setup()"], TRUSTED_PROXIES="10.0.0.0/24,lb")
    assert result.returncode != 0
    assert "TRUSTED_PROXIES entry 'lb' is not an address or a CIDR" in result.stderr
