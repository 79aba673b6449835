"""Input and output shapes of the entitlements API."""

from typing import Any

from rest_framework import serializers


class EntitlementOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    feature = serializers.CharField(source="feature.lookup_key")
    # DRF's metaclass moves declared fields out of the class; the stubs see Field.source.
    source = serializers.CharField()  # type: ignore[assignment]
    plan = serializers.CharField(source="plan.code", allow_null=True, default=None)
    starts_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class BlockOut(serializers.Serializer[Any]):
    feature = serializers.CharField(source="feature.lookup_key")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)


class EntitlementListOut(serializers.Serializer[Any]):
    entitlements = EntitlementOut(many=True)
    blocks = BlockOut(many=True, required=False)


class GrantIn(serializers.Serializer[Any]):
    user = serializers.CharField(help_text="User id, username or email.")
    feature = serializers.CharField(required=False, allow_blank=False)
    plan = serializers.CharField(required=False, allow_blank=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    reason = serializers.CharField(max_length=500)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("feature" in attrs) == ("plan" in attrs):
            raise serializers.ValidationError("Give exactly one of feature or plan.")
        return attrs


class RevokeIn(serializers.Serializer[Any]):
    user = serializers.CharField(help_text="User id, username or email.")
    feature = serializers.CharField(required=False, allow_blank=False)
    all_manual = serializers.BooleanField(required=False, default=False)
    reason = serializers.CharField(max_length=500)
    block_until = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="A revoked Stripe grant stays blocked until lifted, or until this time.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("feature")) == bool(attrs.get("all_manual")):
            raise serializers.ValidationError("Give exactly one of feature or all_manual.")
        return attrs
