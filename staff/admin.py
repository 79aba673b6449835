"""Staff API tokens in the admin: each staff member makes and revokes their own.

The admin only serves staff with a verified second factor (staff/admin_site.py), so a
token is always created behind one. It is shown once, on the page that answers the creation.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from config.requests import AuthenticatedHttpRequest
from staff.api_tokens import api_token_create, api_token_revoke
from staff.models import StaffApiToken


class ApiTokenCreateForm(forms.ModelForm[StaffApiToken]):
    lifetime_days = forms.IntegerField(min_value=1, initial=30, help_text="Days until it expires.")

    class Meta:
        model = StaffApiToken
        fields = ["name"]

    def clean_lifetime_days(self) -> int:
        days: int = self.cleaned_data["lifetime_days"]
        if days > settings.STAFF_API_TOKEN_MAX_DAYS:
            raise forms.ValidationError(
                f"At most {settings.STAFF_API_TOKEN_MAX_DAYS} days (STAFF_API_TOKEN_MAX_DAYS)."
            )
        return days


def _active_staff(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_staff


@admin.register(StaffApiToken)
class StaffApiTokenAdmin(admin.ModelAdmin[StaffApiToken]):
    form = ApiTokenCreateForm
    list_display = ["name", "prefix", "user", "created_at", "expires_at", "revoked_at"]
    actions = ["revoke_selected"]

    # Only signed-in staff reach the admin's views (StaffAdminSite.has_permission): request.user
    # is a User here and in save_model, never AnonymousUser.
    def get_queryset(  # type: ignore[override]
        self, request: AuthenticatedHttpRequest
    ) -> QuerySet[StaffApiToken]:
        tokens = super().get_queryset(request).select_related("user")
        # Superusers see everyone's (to revoke when offboarding); staff only their own.
        return tokens if request.user.is_superuser else tokens.filter(user=request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _active_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: StaffApiToken | None = None) -> bool:
        return _active_staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _active_staff(request)

    def has_change_permission(self, request: HttpRequest, obj: StaffApiToken | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StaffApiToken | None = None) -> bool:
        return False  # revoked, never deleted: the trail refers to it

    # Signed-in staff only, as get_queryset.
    def save_model(  # type: ignore[override]
        self,
        request: AuthenticatedHttpRequest,
        obj: StaffApiToken,
        form: ApiTokenCreateForm,
        change: bool,
    ) -> None:
        token, raw = api_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            lifetime=timedelta(days=form.cleaned_data["lifetime_days"]),
            now=timezone.now(),
        )
        obj.pk, obj._state.adding = token.pk, False
        # An attribute of our own on Django's request, read by response_add below.
        request._staff_api_token_shown_once = (token, raw)  # type: ignore[attr-defined]

    # Django ignores what log_addition returns; the stubs say LogEntry, we write none.
    def log_addition(  # type: ignore[override]
        self, request: HttpRequest, obj: StaffApiToken, message: object
    ) -> None:
        return None  # audited by the service (auth.api_token.created)

    def response_add(
        self, request: HttpRequest, obj: StaffApiToken, post_url_continue: str | None = None
    ) -> TemplateResponse:
        # Set by save_model on this same request (an attribute of our own).
        shown_once: tuple[StaffApiToken, str] = request._staff_api_token_shown_once  # type: ignore[attr-defined]
        token, raw = shown_once
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "token": token,
            "raw": raw,
            "changelist": reverse("admin:staff_staffapitoken_changelist"),
        }
        response = TemplateResponse(request, "admin/staff/api_token_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[StaffApiToken]) -> None:
        now = timezone.now()
        revoked = sum(api_token_revoke(token=token, now=now) for token in queryset)
        messages.success(request, f"{revoked} token(s) revoked.")
