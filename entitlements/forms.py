"""Admin forms: staff grant and revoke always say why."""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.contrib.auth import get_user_model
from django.urls import reverse

from entitlements.models import Entitlement, Feature, Plan


class GrantUserAutocomplete(AutocompleteSelectMultiple):
    """Django admin's autocomplete (select2) over the User admin's search_fields, asking the grant
    form's own endpoint, which needs the grant permission rather than a view permission on
    users. Only the chosen users are ever rendered: the page never lists every account."""

    def get_url(self) -> str:
        return reverse("admin:entitlements_entitlement_grant_users")


class GrantForm(forms.Form):
    users = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.all(),
        widget=GrantUserAutocomplete(Entitlement._meta.get_field("user"), admin.site),
        help_text="Type a username, name or email. Several users make a bulk grant.",
    )
    feature = forms.ModelChoiceField(queryset=Feature.objects.all(), required=False)
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.all(), required=False, help_text="Grants every feature of the plan."
    )
    expires_at = forms.DateTimeField(
        required=False, help_text="Leave empty for a grant without expiry (YYYY-MM-DD HH:MM)."
    )
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self) -> dict[str, Any]:
        # A Form's clean() returns cleaned_data, set before clean() runs (the stubs allow None).
        data = super().clean() or {}
        if bool(data.get("feature")) == bool(data.get("plan")):
            raise forms.ValidationError("Choose exactly one of a feature or a plan.")
        return data


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    block_until = forms.DateTimeField(
        required=False,
        help_text="A revoked Stripe grant stays revoked through Stripe's later events until the "
        "block is lifted; optionally until this time (YYYY-MM-DD HH:MM). Manual grants are "
        "simply revoked.",
    )


class LiftForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class PlanForm(forms.ModelForm[Plan]):
    feature_set = forms.ModelMultipleChoiceField(
        queryset=Feature.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Features",
    )

    class Meta:
        model = Plan
        fields = ["code", "name", "default_duration_days", "grace_days"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["feature_set"].initial = list(self.instance.features.all())
