"""The meta allow-list: whatever a payload holds, only identifier-like allowed values survive."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.meta import ALLOWED_KEYS, LABEL_KEYS, clean_meta

keys = st.one_of(
    st.sampled_from(sorted(ALLOWED_KEYS)),
    st.sampled_from(["email", "name", "card", "last4", "address", "client_secret", "metadata"]),
    st.text(max_size=12),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["jenny@example.com", "Jenny Rosen", "sk_live_abc", "pi_1_secret_2", "usd"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(), scalars))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, values, max_size=12))
def test_only_allowed_keys_with_identifier_like_values_survive(raw):
    cleaned = clean_meta(raw)
    assert set(cleaned) <= ALLOWED_KEYS
    assert json.loads(json.dumps(cleaned)) == cleaned  # stable through the database's JSON
    for key, value in cleaned.items():
        for item in value if isinstance(value, list) else [value]:
            assert item is None or isinstance(item, bool | int | str)
            if isinstance(item, str):
                assert "@" not in item and len(item) <= 255
                # Group names (LABEL_KEYS) are labels an administrator chose: spaces allowed.
                assert key in LABEL_KEYS or " " not in item
                assert not item.startswith(("sk_", "whsec_")) and "_secret_" not in item


def test_a_group_named_like_a_key_is_redacted_in_the_labels():
    # An administrator who pastes a key into a group's name must not put it in the trail; the
    # set still says how many groups there were (before and after must not lie).
    cleaned = clean_meta({"groups_after": ["Billing admin", "sk_live_abc", "pi_1_secret_2"]})
    assert cleaned == {"groups_after": ["Billing admin", "[redacted]", "[redacted]"]}


def test_secrets_without_an_object_id_are_dropped_from_meta():
    # A customer session's or account session's client secret has no object id before
    # `_secret_`; an identifier-like meta value must never carry one.
    for secret in ("cuss_secret_O3UDPzHgS6rGtsdb", "accs_secret__NErVdRAkEJ4S", "x_secret_y"):
        assert clean_meta({"customer": secret}) == {}


def test_ids_amounts_and_codes_are_kept():
    raw = {
        "customer": "cus_NffrFeUfNV2Hib",
        "amount_paid": 1900,
        "currency": "usd",
        "prices": ["price_1", "price_2"],
        "plan": "premium",
        "livemode": False,
        "expires_at": "2026-12-26T16:00:00+00:00",
    }
    assert clean_meta(raw) == raw
