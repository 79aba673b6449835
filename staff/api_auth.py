"""The API's side of staff access: bearer tokens, and the rule for staff actions.

A staff action (anything needing a staff permission, such as granting or revoking) needs an
active staff account and a second factor: an OTP-verified session, or a staff API token (which
was created behind one). HTTP Basic carries a password only, so it never suffices for them;
it still serves ordinary users' reads.
"""

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from staff.api_tokens import TokenRefused, api_token_check
from staff.models import StaffApiToken

if TYPE_CHECKING:  # only for mypy: DRF imports this module while rest_framework.views loads
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.views import APIView

KEYWORD = b"bearer"


class StaffTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer tgt_...`. First in the list, so failed or missing credentials
    answer 401 with `WWW-Authenticate` (DRF takes the header from the first class)."""

    def authenticate(self, request: Request) -> tuple[User, StaffApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("The bearer token is malformed.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The bearer token is malformed.") from None
        try:
            token = api_token_check(raw=raw, now=timezone.now())
        except TokenRefused as refused:
            raise AuthenticationFailed(f"The bearer token is {refused.reason}.") from None
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class StaffSecondFactor(BasePermission):
    """Active staff, authenticated with a second factor: a staff token or a verified session."""

    message = (
        "Staff actions need an active staff account and a second factor: an OTP-verified "
        "session or a staff API token. A password alone (HTTP Basic) is not enough."
    )

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        if isinstance(request.auth, StaffApiToken):
            return True
        if isinstance(request.successful_authenticator, SessionAuthentication):
            # Same rule as the admin: only a DEBUG demo may relax it (check staff.E001).
            verified: bool = getattr(user, "is_verified", lambda: False)()
            return verified or not settings.ADMIN_REQUIRE_2FA
        return False


# drf-spectacular leaves its registry hook (__init_subclass__) unannotated.
class StaffTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The bearer scheme in the OpenAPI schema (drf-spectacular warns on unknown classes)."""

    target_class = StaffTokenAuthentication
    name = "staffToken"

    def get_security_definition(self, auto_schema: "AutoSchema") -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A staff API token (tgt_...), made in the admin behind the second "
            "factor.",
        }
