"""What the daily review's and the access review's admin pages share: read-only pages whose
writes are POSTs calling a service, and the evidence download of a closed review."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect

from audit.errors import AccessReviewRefused, ReviewRefused
from audit.review_evidence import review_evidence_export
from config.problems import render_problem

REFUSALS = (ReviewRefused, AccessReviewRefused)


def evidence_download(request, review):
    """A closed review's evidence ZIP as a download; problem+json while it is still open."""
    try:
        evidence = review_evidence_export(review=review, user=request.user)
    except REFUSALS as refused:
        return render_problem(request, refused)
    response = HttpResponse(evidence.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{evidence.filename}"'
    response["X-Manifest-SHA256"] = evidence.manifest_sha256
    return response


class ReviewPostsMixin:
    """For a ModelAdmin whose writes go through services: `work_permission` allows them, only
    by POST; a service's refusal becomes an admin message and the reviewer goes back to the
    review's page."""

    work_permission = ""

    def has_work_permission(self, request) -> bool:
        return request.user.has_perm(self.work_permission)

    def posted(self, request, object_id=None):
        """(the review, None) for an allowed POST, (None, a 405) for another method; 403 without
        the permissions, 404 for a review that does not exist."""
        if not (self.has_view_permission(request) and self.has_work_permission(request)):
            raise PermissionDenied
        if request.method != "POST":
            return None, HttpResponseNotAllowed(["POST"])
        if object_id is None:
            return None, None
        review = self.get_object(request, object_id)
        if review is None:
            raise Http404(f"No such {self.model._meta.verbose_name}.")
        return review, None

    def back(self, review):
        opts = self.model._meta
        return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", review.pk)

    def run(self, request, review, step, success: str):
        """Call `step()`; show its refusal or `success`; back to the review's page."""
        try:
            step()
        except REFUSALS as refused:
            messages.error(request, refused.detail)
        else:
            messages.success(request, success)
        return self.back(review)

    def evidence_view(self, request, object_id):
        """The closed review's evidence ZIP (view permission: Finance and superusers)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        review = self.get_object(request, object_id)
        if review is None:
            raise Http404(f"No such {self.model._meta.verbose_name}.")
        return evidence_download(request, review)
