"""Which failed sign-ins count against what: django-axes' AXES_LOCKOUT_PARAMETERS.

- A name that belongs to an account: its failures count against the account, from every
  address together (credential stuffing from many addresses still locks it), and only there.
- Any other name (made up, mistyped, empty): its failures count against the address it came
  from, so that address is throttled, and nobody else.

So guesses with made-up names from an address that real staff share (an office, a proxy whose
address TRUSTED_PROXIES does not name) never lock a real account out, while an account under
attack locks wherever the attempts come from. The price, written down in docs/access.md: once an
address is throttled, a known name still gets a normal answer there, so a prober that has used
up its address learns which names exist (one wrong password each, counted on that account).
"""

from typing import Any

from axes.helpers import get_client_username
from axes.models import AccessBase
from django.contrib.auth import get_user_model
from django.http import HttpRequest

BY_ACCOUNT = [["username"]]
BY_ADDRESS = [["ip_address"]]


def _account_exists(username: object) -> bool:
    if not isinstance(username, str) or not username:
        return False
    user_model = get_user_model()
    return user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists()


def lockout_parameters(
    request_or_attempt: HttpRequest | AccessBase, credentials: dict[str, Any] | None = None
) -> list[list[str]]:
    """AXES_LOCKOUT_PARAMETERS: by account for a known name, by address for any other."""
    if isinstance(request_or_attempt, AccessBase):
        username = request_or_attempt.username
    else:
        username = get_client_username(request_or_attempt, credentials)
    return BY_ACCOUNT if _account_exists(username) else BY_ADDRESS
