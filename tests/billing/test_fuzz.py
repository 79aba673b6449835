"""Property: whatever arrives at the webhook endpoint, the answer is never a 5xx.

Bodies range from random bytes through JSON of any shape to correctly signed Stripe-shaped
events with hostile field values; headers are random, absent, or a real signature.
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stripe_fixtures import signed

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {
        "object": st.sampled_from(["event", "customer"]),
        "id": st.text(max_size=30).map(lambda s: "evt_" + s) | json_scalars,
        "type": st.text(max_size=40) | json_scalars,
        "created": st.integers(min_value=-(2**70), max_value=2**70) | json_scalars,
        "livemode": st.booleans() | json_scalars,
        "data": st.fixed_dictionaries(
            {"object": st.dictionaries(st.text(max_size=10), json_values, max_size=5)}
        )
        | json_values,
    }
)
bodies = (
    st.binary(max_size=300).map(lambda b: ("raw", b))
    | json_values.map(lambda v: ("json", json.dumps(v).encode()))
    | event_like.map(lambda v: ("event", json.dumps(v).encode()))
)
headers = st.dictionaries(
    st.sampled_from(
        [
            "HTTP_STRIPE_SIGNATURE",
            "HTTP_X_DJSTRIPE_WEBHOOK_SECRET",
            "CONTENT_TYPE",
            "HTTP_X_REQUEST_ID",
        ]
    ),
    st.text(max_size=60),
    max_size=3,
)


@settings(
    max_examples=2000,  # "thousands of arbitrary bodies and headers", about 15 s
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    extra=headers,
    sign=st.booleans(),
    method=st.sampled_from(["post", "put"]),
    content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data"]),
)
def test_no_input_yields_a_server_error(client, endpoint, body, extra, sign, method, content_type):
    kind, raw = body
    if sign:
        _, extra["HTTP_STRIPE_SIGNATURE"] = signed(raw.decode("utf-8", "replace"), endpoint.secret)
        if kind == "raw":
            raw = raw.decode("utf-8", "replace").encode()
    response = getattr(client, method)(endpoint.path, data=raw, content_type=content_type, **extra)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
