"""billing/verification.py alone: header parsing, signatures, tolerance. No database, no
service: part of `make mutation`'s test set. Headers are made by the stripe SDK."""

import hashlib
import hmac
import re

import pytest

from billing.errors import WebhookSignatureInvalid, WebhookTimestampOutOfTolerance
from billing.verification import (
    MAX_HEADER_LENGTH,
    expected_signature,
    parse_header,
    verify_signature,
)
from tests.stripe_fixtures import signed

SECRET = "whsec_" + "1" * 32
OTHER = "whsec_" + "2" * 32
BODY = '{"id": "evt_1", "object": "event"}'
T = 1_700_000_000


def header_for(body=BODY, secret=SECRET, timestamp=T) -> str:
    return signed(body, secret, timestamp=timestamp)[1]


def verify(header, *, body=BODY, secrets=(SECRET,), tolerance=300, now=T):
    return verify_signature(
        header=header, body=body.encode(), secrets=secrets, tolerance=tolerance, now=now
    )


def test_expected_signature_is_stripes_hmac_of_timestamp_dot_body():
    digest = hmac.new(SECRET.encode(), f"{T}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert expected_signature(secret=SECRET, timestamp=T, body=BODY.encode()) == digest
    assert header_for() == f"t={T},v1={digest}"


def test_parse_header_reads_the_timestamp_and_every_v1_ignoring_v0_and_spaces():
    assert parse_header("t=12, v1=aa,v0=bb , v1=cc,x=1") == (12, ["aa", "cc"])
    assert parse_header("v1=aa,t=7") == (7, ["aa"])


NO_TIMESTAMP = "The Stripe-Signature header has no single valid timestamp."
NO_V1 = "The Stripe-Signature header has no v1 signature."


def exactly(detail: str) -> str:
    """A pytest.raises pattern for exactly this detail: the text problem+json answers with."""
    return f"^{re.escape(detail)}$"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("", NO_TIMESTAMP),
        ("v1=aa", NO_TIMESTAMP),
        ("t=1,t=2,v1=aa", NO_TIMESTAMP),  # two timestamps
        ("t=,v1=aa", NO_TIMESTAMP),
        ("t=-5,v1=aa", NO_TIMESTAMP),
        ("t=1.5,v1=aa", NO_TIMESTAMP),
        ("t=١٢,v1=aa", NO_TIMESTAMP),  # Arabic-Indic digits: isdigit() but not ASCII
        ("t=12", NO_V1),
        ("t=12,v1=", NO_V1),  # an empty signature is none
        ("t=12,v0=aa", NO_V1),
        ("t=12,V1=aa", NO_V1),
    ],
)
def test_parse_header_refuses_unusable_headers(header, detail):
    with pytest.raises(WebhookSignatureInvalid, match=exactly(detail)):
        parse_header(header)


def test_parse_header_splits_each_item_at_its_first_equals_sign():
    assert parse_header("t=12,v1=ab=cd") == (12, ["ab=cd"])


def test_parse_header_length_limit_is_inclusive():
    padding = "x" * (MAX_HEADER_LENGTH - len("t=1,v1=a,"))
    exact = "t=1,v1=a," + padding
    assert len(exact) == MAX_HEADER_LENGTH
    assert parse_header(exact) == (1, ["a"])
    with pytest.raises(
        WebhookSignatureInvalid, match=exactly("The Stripe-Signature header is too long.")
    ):
        parse_header(exact + "x")


def test_a_signature_by_an_active_secret_verifies_and_returns_its_timestamp():
    assert verify(header_for()) == T
    # Any active secret and any v1 of the header may match (rotation: Stripe signs with both).
    assert verify(header_for(secret=OTHER), secrets=(SECRET, OTHER)) == T
    both = f"t={T},v1={'0' * 64},v1={header_for().split('v1=')[1]}"
    assert verify(both) == T
    reversed_order = f"t={T},v1={header_for().split('v1=')[1]},v1={'0' * 64}"
    assert verify(reversed_order, secrets=(OTHER, SECRET)) == T


@pytest.mark.parametrize(
    ("header", "kwargs"),
    [
        (header_for(secret=OTHER), {}),
        (header_for(), {"body": BODY + " "}),
        (header_for(), {"secrets": ()}),
        (header_for(), {"secrets": (OTHER,)}),
        (header_for(timestamp=T + 1).replace(f"t={T + 1}", f"t={T}"), {}),
    ],
)
def test_anything_else_is_an_invalid_signature(header, kwargs):
    detail = "No v1 signature matches an active secret of this endpoint."
    with pytest.raises(WebhookSignatureInvalid, match=exactly(detail)):
        verify(header, **kwargs)


def test_the_tolerance_is_inclusive_both_ways():
    header = header_for()
    assert verify(header, now=T + 300) == T
    assert verify(header, now=T - 300) == T
    detail = "The signed timestamp is more than 300 seconds away from the server's clock."
    with pytest.raises(WebhookTimestampOutOfTolerance, match=exactly(detail)):
        verify(header, now=T + 301)
    with pytest.raises(WebhookTimestampOutOfTolerance):
        verify(header, now=T - 301)  # signed in the future
    assert verify(header, tolerance=0, now=T) == T
    with pytest.raises(WebhookTimestampOutOfTolerance):
        verify(header, tolerance=0, now=T + 0.5)


def test_a_bad_signature_is_reported_before_the_age():
    with pytest.raises(WebhookSignatureInvalid):
        verify(header_for(secret=OTHER), now=T + 10_000)
