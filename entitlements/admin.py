"""Admin: entitlements are read-only rows; staff grant and revoke through forms that call
services and require a reason. Plans are edited by users with change permission (audited)."""

from typing import Any, Protocol

from django.contrib import admin, messages
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from config.admin_readonly import ReadOnlyModelAdmin
from config.context import Actor
from config.requests import AuthenticatedHttpRequest
from entitlements import approvals, blocks, services
from entitlements.errors import ApprovalRequired, EntitlementError
from entitlements.forms import GrantForm, LiftForm, PlanForm, RevokeForm
from entitlements.models import (
    CustomerLink,
    Entitlement,
    Feature,
    FeatureBlock,
    GrantRequest,
    ParkedEvent,
    Plan,
    PlanFeature,
    SubscriptionState,
    UnknownPrice,
)


def _actor(request: HttpRequest) -> Actor:
    return Actor(kind="user", user_id=request.user.pk)


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "user",
        "feature",
        "source",
        "plan",
        "starts_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("source", "feature", "plan", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username", "user__email", "stripe_subscription_id")
    list_select_related = ("user", "feature", "plan")
    actions = ["revoke_selected"]

    def has_grant_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("entitlements.grant_entitlement")

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("entitlements.revoke_entitlement")

    def get_urls(self) -> list[URLPattern]:
        grant = path(
            "grant/",
            self.admin_site.admin_view(self.grant_view),
            name="entitlements_entitlement_grant",
        )
        users = path(
            "grant/users/",
            self.admin_site.admin_view(self.grant_users_view),
            name="entitlements_entitlement_grant_users",
        )
        return [grant, users, *super().get_urls()]

    def grant_users_view(self, request: HttpRequest) -> HttpResponseBase:
        """The grant form's user autocomplete (JSON, 20 users a page)."""
        return GrantUserSearch.as_view(admin_site=self.admin_site)(request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_grant": self.has_grant_permission(request)}
        return super().changelist_view(request, extra_context=extra_context)

    def grant_view(self, request: AuthenticatedHttpRequest) -> HttpResponseBase:
        if not self.has_grant_permission(request):
            raise PermissionDenied
        form = GrantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                rows = services.entitlements_grant_manual(
                    users=list(data["users"]),
                    feature_key=data["feature"].lookup_key if data["feature"] else None,
                    plan_code=data["plan"].code if data["plan"] else None,
                    expires_at=data["expires_at"],
                    reason=data["reason"],
                    granted_by=request.user,
                    actor=_actor(request),
                )
            except ApprovalRequired as pending:
                self.message_user(request, pending.detail, level=messages.WARNING)
                return _redirect_to_changelist()
            except EntitlementError as error:
                form.add_error(None, error.detail)
            else:
                self.message_user(request, f"Granted {len(rows)} entitlement(s).")
                return _redirect_to_changelist()
        context = {**self.admin_site.each_context(request), "form": form, "title": "Grant"}
        return TemplateResponse(request, "admin/entitlements/entitlement/grant.html", context)

    @admin.action(description="Revoke selected entitlements", permissions=["revoke"])
    def revoke_selected(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[Entitlement]
    ) -> TemplateResponse | None:
        form = RevokeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                rows = services.entitlements_revoke_selected(
                    entitlement_ids=list(queryset.values_list("pk", flat=True)),
                    revoked_by=request.user,
                    actor=_actor(request),
                    reason=form.cleaned_data["reason"],
                    block_until=form.cleaned_data["block_until"],
                )
            except EntitlementError as error:
                self.message_user(request, error.detail, level=messages.ERROR)
                return None
            self.message_user(request, f"Revoked {len(rows)} entitlement(s).")
            return None
        live = queryset.filter(revoked_at__isnull=True).select_related("user", "feature")
        if not live:
            self.message_user(request, "None of those is live.", level=messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "entitlements": live,
            "title": "Revoke",
        }
        return TemplateResponse(request, "admin/entitlements/entitlement/revoke.html", context)


class GrantUserSearch(AutocompleteJsonView):
    """Django's autocomplete endpoint for Entitlement.user, allowed to whoever may grant."""

    def has_perm(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.has_perm("entitlements.grant_entitlement")


@admin.register(GrantRequest)
class GrantRequestAdmin(ReadOnlyModelAdmin):
    """Bulk grants waiting for a second staff member: approve or reject (never your own)."""

    list_display = (
        "id",
        "plan_code",
        "feature_key",
        "entitlement_count",
        "requested_by",
        "status",
        "created_at",
        "decided_by",
    )
    list_filter = ("status",)
    list_select_related = ("requested_by", "decided_by")
    actions = ["approve_selected", "reject_selected"]

    def has_grant_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("entitlements.grant_entitlement")

    @admin.action(description="Approve selected grant requests", permissions=["grant"])
    def approve_selected(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[GrantRequest]
    ) -> None:
        self._decide(request, queryset, approvals.grant_request_approve, "Approved")

    @admin.action(description="Reject selected grant requests", permissions=["grant"])
    def reject_selected(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[GrantRequest]
    ) -> None:
        self._decide(request, queryset, approvals.grant_request_reject, "Rejected")

    def _decide(
        self,
        request: AuthenticatedHttpRequest,
        queryset: QuerySet[GrantRequest],
        decide: "_Decision",
        verb: str,
    ) -> None:
        for grant_request in queryset.order_by("id"):
            try:
                decide(grant_request=grant_request, approver=request.user, actor=_actor(request))
            except EntitlementError as error:
                self.message_user(request, error.detail, level=messages.ERROR)
            else:
                self.message_user(request, f"{verb} grant request #{grant_request.pk}.")


class _Decision(Protocol):
    """approvals.grant_request_approve or grant_request_reject."""

    def __call__(self, *, grant_request: GrantRequest, approver: User, actor: Actor) -> object: ...


def _redirect_to_changelist() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:entitlements_entitlement_changelist"))


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    form = PlanForm
    list_display = ("code", "name", "default_duration_days", "grace_days")
    fields = ("code", "name", "default_duration_days", "grace_days", "feature_set")

    def has_delete_permission(self, request: HttpRequest, obj: Plan | None = None) -> bool:
        return False  # entitlements keep pointing at their plan

    def get_readonly_fields(self, request: HttpRequest, obj: Plan | None = None) -> tuple[str, ...]:
        # Stripe prices and stored subscription state name plans by code: renaming one would
        # silently detach its subscribers.
        return ("code",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Plan, form: PlanForm, change: bool) -> None:
        changed = [name for name in form.changed_data if name != "feature_set"]
        services.plan_save(
            plan=obj,
            changed_fields=changed,
            features=list(form.cleaned_data["feature_set"]),
            actor=_actor(request),
        )

    def save_related(
        self, request: HttpRequest, form: PlanForm, formsets: Any, change: bool
    ) -> None:
        pass  # plan_save wrote the features, in the same transaction as the plan


@admin.register(Feature)
class FeatureAdmin(ReadOnlyModelAdmin):
    list_display = ("lookup_key", "name")


@admin.register(PlanFeature)
class PlanFeatureAdmin(ReadOnlyModelAdmin):
    list_display = ("plan", "feature")
    list_select_related = ("plan", "feature")


@admin.register(UnknownPrice)
class UnknownPriceAdmin(ReadOnlyModelAdmin):
    list_display = ("price_id", "product_id", "lookup_key", "occurrences", "last_seen_at")


@admin.register(ParkedEvent)
class ParkedEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "event_id",
        "event_type",
        "stripe_customer_id",
        "stripe_charge_id",
        "parked_at",
        "applied_at",
    )
    exclude = ("payload",)


@admin.register(CustomerLink)
class CustomerLinkAdmin(ReadOnlyModelAdmin):
    list_display = ("stripe_customer_id", "user", "learnt_from", "created_at")


@admin.register(SubscriptionState)
class SubscriptionStateAdmin(ReadOnlyModelAdmin):
    list_display = (
        "stripe_subscription_id", "stripe_customer_id", "status", "unsettled_second", "updated_at"
    )  # fmt: skip

    @admin.display(description="status")
    def status(self, obj: SubscriptionState) -> str | None:
        status: str | None = obj.value("status")
        return status


@admin.register(FeatureBlock)
class FeatureBlockAdmin(ReadOnlyModelAdmin):
    """Support's sticky revokes: Stripe does not grant these features back until lifted."""

    list_display = ("id", "user", "feature", "reason", "created_by", "created_at", "ends_at",
                    "lifted_at")  # fmt: skip
    list_filter = ("feature", ("lifted_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username", "user__email")
    list_select_related = ("user", "feature", "created_by")
    actions = ["lift_selected"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("entitlements.revoke_entitlement")

    @admin.action(description="Lift selected blocks", permissions=["revoke"])
    def lift_selected(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[FeatureBlock]
    ) -> TemplateResponse | None:
        form = LiftForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                lifted = blocks.blocks_lift_selected(
                    block_ids=list(queryset.values_list("pk", flat=True)),
                    lifted_by=request.user,
                    actor=_actor(request),
                    reason=form.cleaned_data["reason"],
                )
            except EntitlementError as error:
                self.message_user(request, error.detail, level=messages.ERROR)
                return None
            self.message_user(request, f"Lifted {lifted} block(s).")
            return None
        open_blocks = queryset.filter(lifted_at__isnull=True).select_related("user", "feature")
        if not open_blocks:
            self.message_user(request, "None of those is in force.", level=messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "blocks": open_blocks,
            "title": "Lift blocks",
        }
        return TemplateResponse(request, "admin/entitlements/featureblock/lift.html", context)
