"""The allow-list for AuditEvent.meta: ids, amounts, currency, statuses, plan and feature codes.

Anything else (card data, emails, names, addresses, secrets, free text) is dropped. Values are
limited to scalars whose text looks like an identifier, so an email or a name smuggled under
an allowed key is dropped too, and every kept value survives a JSON round trip unchanged
(the chain hashes it).
"""

import re
from typing import Any

from billing.stripe_events import META_KEYS
from config.logging import looks_secret

# billing picks a payment event's fields (billing.stripe_events.META_KEYS); they are kept here too.
ALLOWED_KEYS = frozenset(
    {
        *META_KEYS,
        "prices",
        "event_type",
        # entitlements
        "user_id",
        "entitlement_id",
        "feature",
        "plan",
        "source",
        "starts_at",
        "expires_at",
        "previous_expires_at",
        "changed_fields",
        "block_id",
        "ends_at",
        "account",
        "grant_request_id",
        "user_ids",
        "change",
        "status",
        # permission and membership changes (sets before and after)
        "group_id",
        "permissions_before",
        "permissions_after",
        "groups_before",
        "groups_after",
        # webhook rejections and audit's own actions
        "problem",
        "http_status",
        "view",
        "page",
        "search_hmac",
        "search_length",
        "rows",
        "count",
        "count_incomplete",
        "minute",
        "sequence_from",
        "sequence_to",
        "head_sequence",
        "first_bad_sequence",
        "checkpoint_sequence",
        "month",
        "sha256",
        # the daily review
        "day",
        "kind",
        "finding_id",
        "findings",
        "checkpoint_id",
        "checkpoint_hash",
        # the staff access review and the evidence exports of reviews
        "access_review_id",
        "review_id",
        "decision",
        "accounts",
        "kept",
        "removed",
        "sessions_ended",
        "tokens_revoked",
    }
)
# Identifier-like text only: no "@" (emails), no spaces (names, addresses), bounded length.
_SAFE_TEXT = re.compile(r"^[A-Za-z0-9_.:+\-]{0,255}$")
# Group names are labels an administrator chose and may hold spaces ("Billing admin"): under
# these keys only, any printable text without "@" (so never an email) is kept.
LABEL_KEYS = frozenset({"groups_before", "groups_after"})
_SAFE_LABEL = re.compile(r"^[^@\x00-\x1f\x7f]{1,150}$")
REDACTED_LABEL = "[redacted]"
# Sets recorded before and after a change: kept even when empty (an empty set is a fact).
SET_KEYS = frozenset({*LABEL_KEYS, "permissions_before", "permissions_after"})
# A list longer than this is cut. Permission sets are the longest lists (a few hundred codenames
# at most in this project): they must be kept whole, or "before" and "after" would lie.
MAX_LIST_ITEMS = 1000
# Values shaped like secrets are dropped even under an allowed key: what logs and stored request
# data mask (config.logging.SENSITIVE_VALUE, the one definition), and, stricter here because a
# meta value is a bare identifier, anything starting like a Stripe key (sk_abc, not only sk_live_)
# or naming a secret anywhere (`_secret_`, whatever comes before it).
_KEY_PREFIXES = ("sk_", "rk_", "whsec_", "pk_live_")


def _looks_secret(value: str) -> bool:
    return value.startswith(_KEY_PREFIXES) or "_secret_" in value or looks_secret(value)


def _safe_scalar(value: object, *, label: bool = False) -> tuple[bool, object]:
    if label:
        ok = isinstance(value, str) and bool(_SAFE_LABEL.match(value))
        if ok and _looks_secret(str(value)):
            # A group name is whatever an administrator typed, a pasted key included: the set
            # keeps its member (before/after must not lie), the trail never keeps the key.
            return True, REDACTED_LABEL
        return ok, value if ok else None
    if value is None or isinstance(value, bool):
        return True, value
    if isinstance(value, int):
        return True, value
    if isinstance(value, str) and _SAFE_TEXT.match(value) and not _looks_secret(value):
        return True, value
    return False, None


def clean_meta(raw: dict[str, Any] | None) -> dict[str, object]:
    """Keep allowed keys whose values are safe scalars or lists of them; drop the rest."""
    cleaned: dict[str, object] = {}
    for key, value in (raw or {}).items():
        if key not in ALLOWED_KEYS:
            continue
        if isinstance(value, list | tuple):
            label = key in LABEL_KEYS
            items = [_safe_scalar(item, label=label) for item in value[:MAX_LIST_ITEMS]]
            if (items or key in SET_KEYS) and all(ok for ok, _ in items):
                cleaned[key] = [item for _, item in items]
            continue
        ok, safe = _safe_scalar(value)
        if ok:
            cleaned[key] = safe
    return cleaned
