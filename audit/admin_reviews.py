"""What the daily review's and the access review's admin pages share: read-only pages whose
writes are POSTs calling a service, and the evidence download of a closed review."""

from collections.abc import Callable
from typing import TypeVar

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import redirect

from audit.errors import AccessReviewRefused, ReviewRefused
from audit.models import AccessReview, DailyReview
from audit.review_evidence import review_evidence_export
from config.problems import render_problem
from config.requests import AuthenticatedHttpRequest

REFUSALS = (ReviewRefused, AccessReviewRefused)

ReviewT = TypeVar("ReviewT", DailyReview, AccessReview)


def evidence_download(
    request: AuthenticatedHttpRequest, review: DailyReview | AccessReview
) -> HttpResponse:
    """A closed review's evidence ZIP as a download; problem+json while it is still open."""
    try:
        evidence = review_evidence_export(review=review, user=request.user)
    except REFUSALS as refused:
        return render_problem(request, refused)
    response = HttpResponse(evidence.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{evidence.filename}"'
    response["X-Manifest-SHA256"] = evidence.manifest_sha256
    return response


class ReviewPostsMixin(admin.ModelAdmin[ReviewT]):
    """For a ModelAdmin whose writes go through services: `work_permission` allows them, only
    by POST; a service's refusal becomes an admin message and the reviewer goes back to the
    review's page. post_refused() then review_or_404() start each POST view (two steps, not one
    (review, refusal) pair, so that a view holds either a refusal or a review, never a maybe-None
    review). A ModelAdmin itself (listed first, it changes nothing in the method order) so
    that the type checker knows the admin methods it calls."""

    work_permission = ""

    def has_work_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.work_permission)

    def post_refused(self, request: HttpRequest) -> HttpResponseNotAllowed | None:
        """None for an allowed POST, a 405 for another method; 403 without the permissions."""
        if not (self.has_view_permission(request) and self.has_work_permission(request)):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return None

    def review_or_404(self, request: HttpRequest, object_id: str) -> ReviewT:
        review = self.get_object(request, object_id)
        if review is None:
            raise Http404(f"No such {self.model._meta.verbose_name}.")
        return review

    def back(self, review: ReviewT) -> HttpResponseRedirect:
        opts = self.model._meta
        return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", review.pk)

    def run(
        self,
        request: AuthenticatedHttpRequest,
        review: ReviewT,
        step: Callable[[], object],
        success: str,
    ) -> HttpResponseRedirect:
        """Call `step()`; show its refusal or `success`; back to the review's page."""
        try:
            step()
        except REFUSALS as refused:
            messages.error(request, refused.detail)
        else:
            messages.success(request, success)
        return self.back(review)

    def evidence_view(self, request: AuthenticatedHttpRequest, object_id: str) -> HttpResponse:
        """The closed review's evidence ZIP (view permission: Finance and superusers)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return evidence_download(request, self.review_or_404(request, object_id))
