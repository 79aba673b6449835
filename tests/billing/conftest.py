"""Fixtures of the billing tests: a configured endpoint, signed deliveries, metric reads."""

import secrets
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from billing import services
from tests.stripe_fixtures import event, resource, signed


@dataclass
class Endpoint:
    path: str
    secret: str
    model: object


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


@pytest.fixture
def endpoint(db) -> Endpoint:
    secret = new_secret()
    model = services.webhook_endpoint_configure(secrets=[secret], tolerance=300, url="")
    return Endpoint(path=f"/stripe/webhook/{model.djstripe_uuid}/", secret=secret, model=model)


def customer_event(event_type: str = "customer.updated", *, customer_id: str = "cus_t1", **kw):
    return event(event_type, resource("customer", id=customer_id), **kw)


def deliver(client, endpoint: Endpoint, payload, *, secret=None, timestamp=None, **headers):
    body, signature = signed(payload, secret or endpoint.secret, timestamp=timestamp)
    return client.post(
        endpoint.path,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
        **headers,
    )
