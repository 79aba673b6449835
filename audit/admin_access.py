"""The staff access review in Finance's console.

Read-only pages; starting, deciding and completing are POSTs that call audit/access_review.py's
services (the only writers), allowed by audit.conduct_accessreview (Finance and superusers).
"""

from typing import Any, TypedDict

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.urls import URLPattern, path
from django_stubs_ext import WithAnnotations

from audit.access_review import (
    access_review_complete,
    access_review_decide,
    access_review_start,
    access_review_status,
)
from audit.admin_reviews import ReviewPostsMixin
from audit.errors import AccessReviewRefused
from audit.models import AccessDecision, AccessReview
from config.admin_readonly import ReadOnlyModelAdmin
from config.requests import AuthenticatedHttpRequest


# A review as get_queryset() lists it, with its accounts counted. Quoted where used: at run
# time WithAnnotations takes one argument, the TypedDict is for mypy.
class _AccountCounts(TypedDict):
    accounts_total: int
    accounts_pending: int


def access_review_context() -> dict[str, Any]:
    """The access review's part of the compliance dashboard: due or overdue."""
    return {"access_review": access_review_status()}


@admin.register(AccessReview)
class AccessReviewAdmin(ReviewPostsMixin[AccessReview], ReadOnlyModelAdmin):
    list_display = (
        "__str__",
        "started_by_name",
        "accounts",
        "undecided",
        "completed_by_name",
        "completed_at",
    )
    fields = (
        "started_at",
        ("started_by_name", "started_by_id"),
        "interval_days",
        ("completed_at", "completed_by_name", "completed_by_id", "completion_row_id"),
        ("checkpoint_id", "checkpoint_sequence", "checkpoint_hash"),
    )
    readonly_fields = tuple(
        name for entry in fields for name in (entry if isinstance(entry, tuple) else (entry,))
    )
    change_form_template = "admin/audit/accessreview/change_form.html"
    change_list_template = "admin/audit/accessreview/change_list.html"
    work_permission = "audit.conduct_accessreview"
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessReview]:
        pending = Q(decisions__decision=AccessDecision.PENDING)
        return (
            super()
            .get_queryset(request)
            .annotate(
                accounts_total=Count("decisions"),
                accounts_pending=Count("decisions", filter=pending),
            )
        )

    @admin.display(description="accounts")
    def accounts(self, obj: "WithAnnotations[AccessReview, _AccountCounts]") -> int:
        return obj.accounts_total

    @admin.display(description="undecided")
    def undecided(self, obj: "WithAnnotations[AccessReview, _AccountCounts]") -> int:
        return obj.accounts_pending

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("start/", wrap(self.start_view), name="audit_accessreview_start"),
            path(
                "<path:object_id>/decide/",
                wrap(self.decide_view),
                name="audit_accessreview_decide",
            ),
            path(
                "<path:object_id>/complete/",
                wrap(self.complete_view),
                name="audit_accessreview_complete",
            ),
            path(
                "<path:object_id>/evidence/",
                wrap(self.evidence_view),
                name="audit_accessreview_evidence",
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "access_review": access_review_status(),
            "can_conduct": self.has_work_permission(request),
        }
        return super().changelist_view(request, extra_context)

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
            "decisions": list(review.decisions.all()) if review else [],
            "can_conduct": self.has_work_permission(request),
            "own_user_id": str(request.user.pk),
            "outcomes": [AccessDecision.KEEP, AccessDecision.REMOVE],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def start_view(self, request: AuthenticatedHttpRequest) -> HttpResponseBase:
        refusal = self.post_refused(request)
        if refusal:
            return refusal
        try:
            review = access_review_start(user=request.user)
        except AccessReviewRefused as refused:
            messages.error(request, refused.detail)
            return redirect("admin:audit_accessreview_changelist")
        messages.success(request, f"The {review} is open: keep or remove each account.")
        return self.back(review)

    def decide_view(self, request: AuthenticatedHttpRequest, object_id: str) -> HttpResponseBase:
        refusal = self.post_refused(request)
        if refusal:
            return refusal
        review = self.review_or_404(request, object_id)
        decision_id = request.POST.get("decision", "")
        decision = (
            review.decisions.filter(pk=decision_id).first() if decision_id.isdigit() else None
        )
        if decision is None:
            messages.error(request, "That account is not part of this review.")
            return self.back(review)

        def decide() -> None:
            access_review_decide(
                decision=decision,
                user=request.user,
                outcome=request.POST.get("outcome", ""),
                reason=request.POST.get("reason", ""),
            )

        return self.run(request, review, decide, f"Recorded the decision on {decision.username}.")

    def complete_view(self, request: AuthenticatedHttpRequest, object_id: str) -> HttpResponseBase:
        refusal = self.post_refused(request)
        if refusal:
            return refusal
        review = self.review_or_404(request, object_id)

        def complete() -> None:
            access_review_complete(review=review, user=request.user)

        return self.run(request, review, complete, f"The {review} is completed.")
