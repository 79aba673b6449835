"""Prometheus counters of staff sign-in (multiprocess-safe; no user names as labels)."""

from prometheus_client import Counter

login_failures = Counter("tollgate_staff_login_failures", "Failed sign-ins (admin and API).")
lockouts = Counter(
    "tollgate_staff_lockouts", "Accounts or addresses locked out after repeated failures."
)
second_factor_failures = Counter(
    "tollgate_staff_second_factor_failures", "Wrong one-time codes entered by signed-in staff."
)
api_token_refusals = Counter(
    "tollgate_staff_api_token_refusals",
    "Bearer tokens refused by the API.",
    ["reason"],  # unknown | revoked | expired | inactive
)
