"""The entitlements API: the caller's active features; support staff grant and revoke."""

from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.idempotency import idempotent
from config import context
from config.requests import AuthenticatedRequest
from entitlements import selectors, services
from entitlements.errors import UnknownUser
from entitlements.serializers import (
    BlockOut,
    EntitlementListOut,
    EntitlementOut,
    GrantIn,
    RevokeIn,
)
from staff.api_auth import StaffSecondFactor


class ActorBoundAPIView(APIView):
    """DRF authenticates inside the view, after ActorMiddleware: bind the actor here."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.user.is_authenticated:
            self._actor_tokens = context.bind(
                actor=context.Actor(kind="user", user_id=request.user.pk)
            )

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        tokens = getattr(self, "_actor_tokens", None)
        if tokens:
            for token in reversed(tokens):
                token.var.reset(token)
        return super().finalize_response(request, response, *args, **kwargs)


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Replays the stored response of an earlier request with the same key and body.",
)


def _has_perm(codename: str) -> type[BasePermission]:
    class HasPerm(BasePermission):
        def has_permission(self, request: Request, view: APIView) -> bool:
            return request.user.is_authenticated and request.user.has_perm(codename)

    return HasPerm


def _target_user(identifier: str) -> User:
    user = selectors.user_by_identifier(identifier)
    if user is None:
        raise UnknownUser(f"No single user matches {identifier!r}.")
    return user


class EntitlementListView(ActorBoundAPIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=EntitlementListOut, summary="The caller's active entitlements")
    def get(self, request: AuthenticatedRequest) -> Response:
        now = timezone.now()
        rows = selectors.user_active_entitlements(user_id=request.user.pk, now=now)
        blocks = selectors.open_blocks(user_id=request.user.pk, now=now)
        return Response(
            {
                "entitlements": EntitlementOut(rows, many=True).data,
                "blocks": BlockOut(blocks, many=True).data,
            }
        )


class GrantView(ActorBoundAPIView):
    permission_classes = [StaffSecondFactor, _has_perm("entitlements.grant_entitlement")]

    @extend_schema(
        request=GrantIn,
        responses={201: EntitlementListOut},
        parameters=[IDEMPOTENCY_KEY],
        summary="Grant by hand",
    )
    @idempotent(operation="entitlement_grant")
    def post(self, request: AuthenticatedRequest) -> Response:
        data = GrantIn(data=request.data)
        data.is_valid(raise_exception=True)
        rows = services.entitlement_grant_manual(
            user=_target_user(data.validated_data["user"]),
            feature_key=data.validated_data.get("feature"),
            plan_code=data.validated_data.get("plan"),
            expires_at=data.validated_data.get("expires_at"),
            reason=data.validated_data["reason"],
            granted_by=request.user,
            actor=context.current_actor(),
        )
        return Response({"entitlements": EntitlementOut(rows, many=True).data}, status=201)


class RevokeView(ActorBoundAPIView):
    permission_classes = [StaffSecondFactor, _has_perm("entitlements.revoke_entitlement")]

    @extend_schema(
        request=RevokeIn,
        responses=EntitlementListOut,
        parameters=[IDEMPOTENCY_KEY],
        summary="Revoke",
    )
    @idempotent(operation="entitlement_revoke")
    def post(self, request: AuthenticatedRequest) -> Response:
        data = RevokeIn(data=request.data)
        data.is_valid(raise_exception=True)
        rows = services.entitlements_revoke_for_user(
            user=_target_user(data.validated_data["user"]),
            feature_key=data.validated_data.get("feature"),
            all_manual=data.validated_data["all_manual"],
            reason=data.validated_data["reason"],
            revoked_by=request.user,
            actor=context.current_actor(),
            block_until=data.validated_data.get("block_until"),
        )
        return Response({"entitlements": EntitlementOut(rows, many=True).data})
