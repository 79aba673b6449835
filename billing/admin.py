"""Admin for the event inbox: read-only, with one guarded action to requeue dead letters."""

from typing import TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import connection
from django.db.models import F, Func, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django_stubs_ext import WithAnnotations
from djstripe.models import Customer, Event

from billing import services
from billing.errors import DeadLetterNotReprocessable
from billing.models import StripeEvent
from config.admin_readonly import ReadOnlyModelAdmin
from config.context import Actor


def _payload_as_text() -> Func | Cast:
    """The stored payload as text, made by the database: Python never decodes it here."""
    if connection.vendor == "postgresql":
        return Func(F("payload"), function="jsonb_pretty", output_field=TextField())
    return Cast("payload", output_field=TextField())


class _PayloadText(TypedDict):
    payload_as_text: str  # get_queryset's annotation


class ReprocessForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Why this event is reprocessed (audited).")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "event_id", "type", "status", "livemode", "account", "attempts", "mirror_status",
        "received_at",
    )  # fmt: skip
    list_filter = ("status", "livemode", "mirror_status", "type")
    search_fields = ("event_id", "customer_id")
    actions = ["reprocess_dead_letters"]
    # The payload is never decoded into Python objects here: the JSON decoder recurses once per
    # level, and a deeply nested (still signed) event made its page and the list a 500. The
    # database hands it over as text instead (indented on PostgreSQL).
    # A tuple: the stubs type fields as list[str | list[str] | ...] (invariant) or a tuple.
    fields = readonly_fields = (
        *(f.name for f in StripeEvent._meta.fields if f.name != "payload"),
        "payload_shown",
        "in_djstripe",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[StripeEvent]:
        queryset = super().get_queryset(request).defer("payload")
        annotated: QuerySet[StripeEvent] = queryset.annotate(payload_as_text=_payload_as_text())
        return annotated

    @admin.display(description="payload")
    # Quoted: at run time WithAnnotations takes one argument, the TypedDict is for mypy.
    def payload_shown(self, obj: "WithAnnotations[StripeEvent, _PayloadText]") -> SafeString:
        return format_html("<pre>{}</pre>", obj.payload_as_text)

    @admin.display(description="In dj-stripe's mirror")
    def in_djstripe(self, obj: StripeEvent) -> str:
        """Links to what dj-stripe's mirror made of the event: its Event and the customer (whose
        page lists the subscriptions); the linked pages keep their own view permissions."""
        links: list[tuple[str, str, str]] = []
        for model, object_id in ((Event, obj.event_id), (Customer, obj.customer_id)):
            row = model.objects.filter(id=object_id).only("pk").first() if object_id else None
            if row is not None:
                url = reverse(f"admin:djstripe_{model._meta.model_name}_change", args=[row.pk])
                links.append((url, model._meta.verbose_name, object_id))
        if not links:
            return "not mirrored"
        return format_html_join(", ", '<a href="{}">{} {}</a>', links)

    def has_reprocess_deadletter_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.reprocess_deadletter")

    @admin.action(
        description="Reprocess selected dead letters", permissions=["reprocess_deadletter"]
    )
    def reprocess_dead_letters(
        self, request: HttpRequest, queryset: QuerySet[StripeEvent]
    ) -> TemplateResponse | None:
        form = ReprocessForm(request.POST if "reason" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Reprocess dead letters",
                "queryset": queryset,
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/billing/reprocess_dead_letters.html", context)
        done = 0
        for event in queryset:
            try:
                services.dead_letter_reprocess(
                    event_id=event.event_id,
                    actor=Actor(kind="user", user_id=request.user.pk),
                    reason=form.cleaned_data["reason"],
                )
                done += 1
            except DeadLetterNotReprocessable as error:
                self.message_user(request, error.detail, messages.WARNING)
        self.message_user(request, f"{done} dead letter(s) requeued.", messages.SUCCESS)
        return None
