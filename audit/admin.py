"""Finance's read-only compliance console: the trail, checkpoints, and Stripe's event log.

Nobody (superusers included) can add, change or delete here. Lists never COUNT(*) the table,
filter only on indexed columns and search by exact ids. Viewing and exporting are audited.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any, TypedDict, cast

from django.contrib import admin, messages
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Model, Q, QuerySet
from django.db.models.expressions import Expression
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django_stubs_ext import StrOrPromise, WithAnnotations

from audit import actions
from audit.admin_access import access_review_context
from audit.admin_reviews import ReviewPostsMixin
from audit.charts import WINDOWS, dashboard_charts
from audit.errors import AuditExportInvalid
from audit.export import csv_lines
from audit.models import AuditCheckpoint, AuditEvent, DailyReview, FindingStatus
from audit.paginator import EstimatedCountPaginator
from audit.privacy import query_for_trail
from audit.selectors import (
    chain_status,
    counts_since,
    dead_letters_waiting,
    head_sequence,
    start_of_today,
)
from audit.services import Target, audit_event_record
from audit.signing import public_key_pem
from audit.signoff import daily_review_sign_off, review_finding_work, reviews_overdue
from audit.verification import link_verifies
from config.admin_readonly import ReadOnlyAdminMixin, ReadOnlyModelAdmin
from config.problems import render_problem
from config.requests import AuthenticatedHttpRequest
from config.typed import typed_id


class ActionFilter(admin.SimpleListFilter):
    """Choices from the action registry: no SELECT DISTINCT over millions of rows."""

    title = "action"
    parameter_name = "action"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> Iterable[tuple[str, StrOrPromise]]:
        return [(name, action.label) for name, action in sorted(actions.ACTIONS.items())]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> QuerySet[AuditEvent]:
        value = self.value()
        return queryset.filter(action=value) if value else queryset


EXACT_SEARCH_COLUMNS = ("actor_id", "target_id", "stripe_event_id", "request_id")
# Query-string lookups the list (and so the export) accepts: each is served by an index.
# Django would otherwise accept any lookup on a local field, e.g. ?meta__icontains=..., a scan.
INDEXED_LOOKUPS = frozenset(
    {
        "action",  # ActionFilter's parameter
        "action__exact",
        "outcome__exact",
        "actor_type__exact",
        "actor_role__exact",
        "occurred_at__gte",
        "occurred_at__lt",
        "sequence__gte",
        "sequence__lte",
        *EXACT_SEARCH_COLUMNS,
        *(f"{column}__exact" for column in EXACT_SEARCH_COLUMNS),
    }
)


class AuditChangeList(ChangeList):
    def get_ordering(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> list[Expression | str]:
        # The chain position only (rows not sealed yet on top): a crafted ?o= sorting by another
        # column would scan the table. DESC NULLS FIRST is a backward scan of the indexes.
        return [F("sequence").desc(nulls_first=True)]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "sequence",
        "occurred_at",
        "action",
        "outcome",
        "actor_type",
        "actor_name",
        "actor_role",
        "target_type",
        "target_id",
        "stripe_event_id",
    )
    list_filter = (
        ActionFilter,
        "outcome",
        "actor_type",
        "actor_role",
        ("occurred_at", admin.DateFieldListFilter),
    )
    search_fields = EXACT_SEARCH_COLUMNS
    search_help_text = "Exact id: actor id, target id, Stripe event id, request id or sequence."
    fields = (
        "sequence",
        "id",
        "occurred_at",
        "action",
        "outcome",
        ("actor_type", "actor_id", "actor_name", "actor_role"),
        ("target_type", "target_id", "target_repr"),
        "stripe_event_id",
        ("request_id", "ip"),
        "user_agent",
        "reason",
        "stored_meta",
        "prev_hash",
        "hash",
        "chain_link",
    )
    readonly_fields = tuple(
        name for entry in fields for name in (entry if isinstance(entry, tuple) else (entry,))
    )
    sortable_by = ()  # newest first, always (see AuditChangeList)
    list_per_page = 100
    list_max_show_all = 0
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ("export_selected",)
    change_list_template = "admin/audit/auditevent/change_list.html"

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AuditChangeList

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup in INDEXED_LOOKUPS

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent], search_term: str
    ) -> tuple[QuerySet[AuditEvent], bool]:
        # Exact equality on indexed columns only; Django's "=" prefix would use iexact (UPPER),
        # which no index serves.
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = queryset.none()
        for column in EXACT_SEARCH_COLUMNS:
            matches |= queryset.filter(**{column: term})
        sequence = typed_id(term)
        if sequence is not None:
            matches |= queryset.filter(sequence=sequence)
        return matches, False

    @admin.display(description="meta (stored)")
    def stored_meta(self, obj: AuditEvent) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.meta, indent=2, sort_keys=True))

    @admin.display(description="chain link")
    def chain_link(self, obj: AuditEvent) -> str:
        verifies = link_verifies(obj)
        if verifies is None:
            return "not sealed yet: the sealer gives it a sequence and hash after its commit"
        if verifies:
            return "verifies: hash matches this row and the previous row's hash"
        return format_html("<strong>{}</strong>", "DOES NOT VERIFY: run audit_verify")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and response.status_code == 200:
            page = request.GET.get("p", "1")
            query, search = query_for_trail(request.GET)
            _record_view(_signed_in(request), Target("audit_trail", "", query[:255]), page, search)
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            _record_view(
                _signed_in(request), Target("audit_event", object_id, f"row id {object_id}"), None
            )
        return response

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("export/", wrap(self.export_view), name="audit_auditevent_export"),
            path("dashboard/", wrap(self.dashboard_view), name="audit_dashboard"),
            *super().get_urls(),
        ]

    def export_view(self, request: AuthenticatedHttpRequest) -> HttpResponseBase:
        """The rows of the list as filtered now (same query string), as a streamed CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except (IncorrectLookupParameters, DisallowedModelAdminLookup):
            error = AuditExportInvalid("The export's filters are not filters of the audit list.")
            return render_problem(request, error)
        query, search = query_for_trail(request.GET)
        return self._stream(request, changelist.get_queryset(request), query, search)

    @admin.action(description="Export selected rows as CSV", permissions=["view"])
    def export_selected(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[AuditEvent]
    ) -> StreamingHttpResponse:
        return self._stream(request, queryset, f"{queryset.count()} selected rows")

    def _stream(
        self,
        request: AuthenticatedHttpRequest,
        queryset: QuerySet[AuditEvent],
        description: str,
        search: dict[str, Any] | None = None,
    ) -> StreamingHttpResponse:
        up_to = head_sequence()
        audit_event_record(
            action=actions.EXPORT_CREATED.name,
            actor_user=request.user,
            target=Target("audit_trail", "", description[:255]),
            meta={"view": "csv", "sequence_to": up_to, **(search or {})},
        )
        response = StreamingHttpResponse(
            csv_lines(queryset, up_to=up_to), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="audit-to-{up_to}.csv"'
        return response

    def dashboard_view(self, request: AuthenticatedHttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = counts_since(start_of_today())
        context = {
            **self.admin_site.each_context(request),
            "title": "Compliance dashboard",
            "opts": self.model._meta,
            "today": today,
            "figures": [
                ("Payment events today", today.get("payment", 0)),
                ("Failed payments today", today.get(actions.PAYMENT_FAILED.name, 0)),
                ("Rejected webhooks today", today.get("webhook", 0)),
                ("Dead letters reprocessed today", today.get("deadletter", 0)),
                ("Grants today", today.get("grant", 0)),
                ("Revokes and lapses today", today.get("revoke", 0)),
            ],
            "dead_letters": dead_letters_waiting(),
            "chain": chain_status(),
            "public_key": public_key_pem(),
            **_review_context(request),
        }
        _record_view(request, Target("audit_dashboard", "", "compliance dashboard"), None)
        return TemplateResponse(request, "admin/audit/dashboard.html", context)


def _review_context(request: HttpRequest) -> dict[str, Any]:
    """The daily review's part of the dashboard: overdue sign-offs and the charts."""
    asked = request.GET.get("days", "")
    days = int(asked) if asked.isdigit() and int(asked) in WINDOWS else WINDOWS[0]
    return {
        "overdue_reviews": reviews_overdue(),
        "chart_days": days,
        "chart_windows": WINDOWS,
        "charts": dashboard_charts(today=start_of_today().date(), days=days),
        **access_review_context(),
    }


def _signed_in(request: HttpRequest) -> AuthenticatedHttpRequest:
    """The request of a page behind the admin's login (admin_site.admin_view): a staff user's.
    For the ModelAdmin views whose signature Django's stubs fix as HttpRequest."""
    return cast(AuthenticatedHttpRequest, request)


def _record_view(
    request: AuthenticatedHttpRequest,
    target: Target,
    page: str | None,
    search: dict[str, Any] | None = None,
) -> None:
    # Search terms are names and emails staff typed: only their keyed hash and length are kept.
    meta: dict[str, Any] = {"view": target.type, **(search or {})}
    if page is not None:
        meta["page"] = page
    audit_event_record(
        action=actions.TRAIL_VIEWED.name, actor_user=request.user, target=target, meta=meta
    )


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "sequence", "hash", "root", "created_at", "algorithm", "signature")
    fields = list_display
    readonly_fields = list_display
    show_full_result_count = False


STRIPE_FETCHING_PROPERTIES = frozenset({"customer"})


# dj-stripe's own event log, made strictly read-only: its admins offer Stripe resync actions
# and (for delivery attempts) delete_selected, which finance must not have.
def _read_only_djstripe(model_name: str) -> None:
    from djstripe import admin as djstripe_admin  # noqa: F401  (registers dj-stripe's admins)
    from djstripe import models as djstripe_models

    model = getattr(djstripe_models, model_name)
    base = type(admin.site._registry[model]) if admin.site.is_registered(model) else None
    if base is None:
        return
    admin.site.unregister(model)

    # dj-stripe's own admin class, known at run time only (dj-stripe ships no types).
    class ReadOnlyStripeAdmin(ReadOnlyAdminMixin, base):  # type: ignore[misc,valid-type]
        def get_actions(
            self, request: HttpRequest
        ) -> dict[str, tuple[Callable[..., str], str, str] | None]:
            return {}

        def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
            # dj-stripe shows every model property; Event.customer fetches a customer missing
            # from the mirror from Stripe's API while the page renders (a 500 when Stripe is
            # unreachable, a mirror write on a GET otherwise).
            fields = super().get_readonly_fields(request, obj)
            return [name for name in fields if name not in STRIPE_FETCHING_PROPERTIES]

    ReadOnlyStripeAdmin.__name__ = f"ReadOnly{base.__name__}"
    admin.site.register(model, ReadOnlyStripeAdmin)


for _model_name in ("Event", "WebhookEventTrigger"):
    _read_only_djstripe(_model_name)


# --- The daily review: read-only pages; working findings and signing off are POSTs that call
# audit/signoff.py's services (the only writers), allowed by audit.sign_off_dailyreview.


# A review as DailyReviewAdmin.get_queryset() lists it. Quoted where used: at run time
# WithAnnotations takes one argument, the TypedDict is for mypy.
class _FindingCounts(TypedDict):
    findings_total: int
    findings_open: int


@admin.register(DailyReview)
class DailyReviewAdmin(ReviewPostsMixin[DailyReview], ReadOnlyModelAdmin):
    list_display = (
        "day",
        "chain_ok",
        "rows",
        "findings_count",
        "open_findings",
        "signed_off_by_name",
        "signed_off_at",
    )
    fields = (
        "day",
        "created_at",
        "chain_ok",
        "rows",
        ("first_sequence", "last_sequence"),
        ("signed_off_at", "signed_off_by_name", "signed_off_by_id", "sign_off_row_id"),
        ("checkpoint_id", "checkpoint_sequence", "checkpoint_hash"),
    )
    readonly_fields = tuple(
        name for entry in fields for name in (entry if isinstance(entry, tuple) else (entry,))
    )
    change_form_template = "admin/audit/dailyreview/change_form.html"
    work_permission = "audit.sign_off_dailyreview"
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[DailyReview]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                findings_total=Count("findings"),
                findings_open=Count("findings", filter=Q(findings__status=FindingStatus.OPEN)),
            )
        )

    @admin.display(description="findings")
    def findings_count(self, obj: "WithAnnotations[DailyReview, _FindingCounts]") -> int:
        return obj.findings_total

    @admin.display(description="open")
    def open_findings(self, obj: "WithAnnotations[DailyReview, _FindingCounts]") -> int:
        return obj.findings_open

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/work/",
                wrap(self.work_view),
                name="audit_dailyreview_work",
            ),
            path(
                "<path:object_id>/sign-off/",
                wrap(self.sign_off_view),
                name="audit_dailyreview_sign_off",
            ),
            path(
                "<path:object_id>/evidence/",
                wrap(self.evidence_view),
                name="audit_dailyreview_evidence",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        review = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "findings": list(review.findings.all()) if review else [],
            "can_sign_off": self.has_work_permission(request),
            "decisions": [FindingStatus.ACCEPTED, FindingStatus.ESCALATED],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def work_view(self, request: AuthenticatedHttpRequest, object_id: str) -> HttpResponseBase:
        refusal = self.post_refused(request)
        if refusal:
            return refusal
        review = self.review_or_404(request, object_id)
        finding_id = request.POST.get("finding", "")
        finding = review.findings.filter(pk=finding_id).first() if finding_id.isdigit() else None
        if finding is None:
            messages.error(request, "That finding is not part of this review.")
            return self.back(review)

        def work() -> None:
            review_finding_work(
                finding=finding,
                user=request.user,
                decision=request.POST.get("decision", ""),
                note=request.POST.get("note", ""),
            )

        return self.run(request, review, work, f"{finding.get_kind_display()}: recorded.")

    def sign_off_view(self, request: AuthenticatedHttpRequest, object_id: str) -> HttpResponseBase:
        refusal = self.post_refused(request)
        if refusal:
            return refusal
        review = self.review_or_404(request, object_id)

        def sign_off() -> None:
            daily_review_sign_off(review=review, user=request.user)

        return self.run(request, review, sign_off, f"The {review} is signed off.")
