"""A delivery is recorded with the address of whoever sent it, not the load balancer's."""

from djstripe.models import WebhookEventTrigger

from billing.models import StripeEvent
from tests.billing.conftest import customer_event, deliver

PROXY = "10.0.0.2"


def recorded_address(client, endpoint, **meta) -> str:
    payload = customer_event()
    assert deliver(client, endpoint, payload, **meta).status_code == 200
    trigger_id = StripeEvent.objects.get(event_id=payload["id"]).trigger_id
    return WebhookEventTrigger.objects.get(pk=trigger_id).remote_ip


def test_delivery_records_the_client_behind_the_trusted_proxy_only(client, endpoint, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    through_proxy = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "1.2.3.4, 3.18.12.63"}
    assert recorded_address(client, endpoint, **through_proxy) == "3.18.12.63"
    # Straight to the app: whatever the sender claims, the peer is recorded.
    direct = {"REMOTE_ADDR": "198.51.100.4", "HTTP_X_FORWARDED_FOR": "3.18.12.63"}
    assert recorded_address(client, endpoint, **direct) == "198.51.100.4"
