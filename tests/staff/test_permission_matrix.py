"""The permission matrix: every admin page and API endpoint, every role, the expected status.

MATRIX below is the decision record of who may see what; docs/access.md mirrors it (a test
keeps the two equal). A URL the resolver knows but MATRIX does not list fails the suite, so a
new page cannot ship without deciding who may see it.
"""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from staff import roles as staff_roles

ROLES = ("anonymous", "user", "finance", "support", "billing_admin", "su_no_2fa", "superuser")


# Statuses of a GET, in ROLES order. 302 on an admin page: to the login (anonymous, plain
# user) or to the second-factor page (signed in without it); 403: admitted to the admin but
# without the permission; 404 on an app index: no model of that app is visible to the role.
SUPERUSER_ONLY = (302, 302, 403, 403, 403, 302, 200)
NOBODY = (302, 302, 403, 403, 403, 302, 403)  # read-only models: no add/change/delete page
REDIRECT = (302, 302, 302, 302, 302, 302, 302)  # "<pk>/" forwards to "<pk>/change/"
ALL_STAFF = (302, 302, 200, 200, 200, 302, 200)
FINANCE_VIEW = (302, 302, 200, 403, 403, 302, 200)
SUPPORT_AND_FINANCE_VIEW = (302, 302, 200, 200, 403, 302, 200)
FINANCE_POST_ONLY = (302, 302, 405, 403, 403, 302, 405)
# A review's evidence: Finance downloads it once the review is closed; the matrix's reviews are
# open, so the answer is the problem+json 409 that says so.
FINANCE_EVIDENCE_OF_OPEN_REVIEW = (302, 302, 409, 403, 403, 302, 409)
# dj-stripe's "sync from Stripe" confirmation: superusers only (staff guard), POST only.
STRIPE_SYNC = (302, 302, 403, 403, 403, 302, 405)
# dj-stripe's mirror of Stripe objects: superusers only. Object pages are asked for a missing
# row (no mirror rows are made here): 302 back to the list, or 403 without the permission.
DJSTRIPE_MIRROR = (
    "account", "accountv2", "activeentitlement", "apikey", "applicationfee",
    "applicationfeerefund", "balancetransaction", "bankaccount", "card", "charge", "coupon",
    "customer", "discount", "dispute", "feature", "file", "filelink", "idempotencykey",
    "invoice", "lineitem", "mandate", "paymentintent", "paymentmethod", "payout", "price",
    "product", "productfeature", "promotioncode", "refund", "session", "setupintent",
    "shippingrate", "subscription", "subscriptionschedule", "taxcode", "taxrate", "transfer",
    "transferreversal", "webhookendpoint",
)  # fmt: skip
DJSTRIPE_NO_ADD = ("balancetransaction", "discount", "dispute", "idempotencykey")
DJSTRIPE_NO_SYNC = ("apikey", "idempotencykey")
MISSING_ROW = (302, 302, 403, 403, 403, 302, 302)


def _djstripe_mirror_rows() -> dict[str, tuple]:
    rows = {}
    for model in DJSTRIPE_MIRROR:
        base = f"admin/djstripe/{model}/"
        rows[base] = SUPERUSER_ONLY
        rows[base + "add/"] = NOBODY if model in DJSTRIPE_NO_ADD else SUPERUSER_ONLY
        rows[base + "<path:object_id>/"] = REDIRECT
        rows[base + "<path:object_id>/change/"] = MISSING_ROW
        rows[base + "<path:object_id>/delete/"] = MISSING_ROW
        rows[base + "<path:object_id>/history/"] = REDIRECT
        if model not in DJSTRIPE_NO_SYNC:
            rows[base + "action/<str:action_name>/<str:model_name>/"] = STRIPE_SYNC
    return rows


# Route (as the resolver spells it; regex routes expanded) -> status per role.
MATRIX: dict[str, tuple] = {
    "healthz": (200, 200, 200, 200, 200, 200, 200),
    "readyz": (200, 200, 200, 200, 200, 200, 200),
    "metrics": (200, 200, 200, 200, 200, 200, 200),
    "admin/2fa/verify/": REDIRECT,
    "admin/2fa/enroll/": (302, 302, 302, 302, 302, 200, 302),
    "admin/": ALL_STAFF,
    "admin/login/": (200, 200, 302, 302, 302, 302, 302),
    "admin/logout/": (302, 302, 405, 405, 405, 302, 405),
    "admin/password_change/": ALL_STAFF,
    "admin/password_change/done/": ALL_STAFF,
    "admin/autocomplete/": NOBODY,
    "admin/jsi18n/": ALL_STAFF,
    "admin/r/<path:content_type_id>/<path:object_id>/": (302, 302, 404, 404, 404, 302, 404),
    "admin/auth/group/": SUPERUSER_ONLY,
    "admin/auth/group/add/": SUPERUSER_ONLY,
    "admin/auth/group/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/auth/group/<path:object_id>/delete/": SUPERUSER_ONLY,
    "admin/auth/group/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/auth/group/<path:object_id>/": REDIRECT,
    "admin/auth/user/<id>/password/": SUPERUSER_ONLY,
    "admin/auth/user/": SUPERUSER_ONLY,
    "admin/auth/user/add/": SUPERUSER_ONLY,
    "admin/auth/user/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/auth/user/<path:object_id>/delete/": SUPERUSER_ONLY,
    "admin/auth/user/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/auth/user/<path:object_id>/": REDIRECT,
    "admin/otp_totp/totpdevice/<int:pk>/config/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/<int:pk>/qrcode/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/add/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/<path:object_id>/delete/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/<path:object_id>/": REDIRECT,
    "admin/otp_static/staticdevice/": SUPERUSER_ONLY,
    "admin/otp_static/staticdevice/add/": SUPERUSER_ONLY,
    "admin/otp_static/staticdevice/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/otp_static/staticdevice/<path:object_id>/delete/": SUPERUSER_ONLY,
    "admin/otp_static/staticdevice/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/otp_static/staticdevice/<path:object_id>/": REDIRECT,
    "admin/axes/accessattempt/": SUPERUSER_ONLY,
    "admin/axes/accessattempt/add/": NOBODY,
    "admin/axes/accessattempt/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/axes/accessattempt/<path:object_id>/delete/": SUPERUSER_ONLY,
    "admin/axes/accessattempt/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/axes/accessattempt/<path:object_id>/": REDIRECT,
    "admin/axes/accesslog/": SUPERUSER_ONLY,
    "admin/axes/accesslog/add/": NOBODY,
    "admin/axes/accesslog/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/axes/accesslog/<path:object_id>/delete/": SUPERUSER_ONLY,
    "admin/axes/accesslog/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/axes/accesslog/<path:object_id>/": REDIRECT,
    "admin/axes/accessfailurelog/": SUPERUSER_ONLY,
    "admin/axes/accessfailurelog/add/": NOBODY,
    "admin/axes/accessfailurelog/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/axes/accessfailurelog/<path:object_id>/delete/": SUPERUSER_ONLY,
    "admin/axes/accessfailurelog/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/axes/accessfailurelog/<path:object_id>/": REDIRECT,
    "admin/billing/stripeevent/": (302, 302, 200, 403, 200, 302, 200),
    "admin/billing/stripeevent/add/": NOBODY,
    "admin/billing/stripeevent/<path:object_id>/history/": (302, 302, 200, 403, 200, 302, 200),
    "admin/billing/stripeevent/<path:object_id>/delete/": NOBODY,
    "admin/billing/stripeevent/<path:object_id>/change/": (302, 302, 200, 403, 200, 302, 200),
    "admin/billing/stripeevent/<path:object_id>/": REDIRECT,
    "admin/entitlements/entitlement/grant/": (302, 302, 403, 200, 403, 302, 200),
    # The grant form's user autocomplete: a GET without its query parameters is refused (403)
    # for everyone, like Django's own admin/autocomplete/.
    "admin/entitlements/entitlement/grant/users/": NOBODY,
    "admin/entitlements/entitlement/": (302, 302, 200, 200, 403, 302, 200),
    "admin/entitlements/entitlement/add/": NOBODY,
    "admin/entitlements/entitlement/<path:object_id>/history/": (302, 302, 200, 200, 403, 302, 200),
    "admin/entitlements/entitlement/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/entitlement/<path:object_id>/change/": (302, 302, 200, 200, 403, 302, 200),
    "admin/entitlements/entitlement/<path:object_id>/": REDIRECT,
    "admin/entitlements/plan/": ALL_STAFF,
    "admin/entitlements/plan/add/": SUPERUSER_ONLY,
    "admin/entitlements/plan/<path:object_id>/history/": ALL_STAFF,
    "admin/entitlements/plan/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/plan/<path:object_id>/change/": ALL_STAFF,
    "admin/entitlements/plan/<path:object_id>/": REDIRECT,
    "admin/entitlements/feature/": ALL_STAFF,
    "admin/entitlements/feature/add/": NOBODY,
    "admin/entitlements/feature/<path:object_id>/history/": ALL_STAFF,
    "admin/entitlements/feature/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/feature/<path:object_id>/change/": ALL_STAFF,
    "admin/entitlements/feature/<path:object_id>/": REDIRECT,
    "admin/entitlements/planfeature/": ALL_STAFF,
    "admin/entitlements/planfeature/add/": NOBODY,
    "admin/entitlements/planfeature/<path:object_id>/history/": ALL_STAFF,
    "admin/entitlements/planfeature/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/planfeature/<path:object_id>/change/": ALL_STAFF,
    "admin/entitlements/planfeature/<path:object_id>/": REDIRECT,
    "admin/entitlements/unknownprice/": (302, 302, 403, 200, 403, 302, 200),
    "admin/entitlements/unknownprice/add/": NOBODY,
    "admin/entitlements/unknownprice/<path:object_id>/history/": (
        302,
        302,
        403,
        200,
        403,
        302,
        200,
    ),
    "admin/entitlements/unknownprice/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/unknownprice/<path:object_id>/change/": (302, 302, 403, 200, 403, 302, 200),
    "admin/entitlements/unknownprice/<path:object_id>/": REDIRECT,
    "admin/entitlements/parkedevent/": (302, 302, 403, 200, 403, 302, 200),
    "admin/entitlements/parkedevent/add/": NOBODY,
    "admin/entitlements/parkedevent/<path:object_id>/history/": (302, 302, 403, 200, 403, 302, 200),
    "admin/entitlements/parkedevent/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/parkedevent/<path:object_id>/change/": (302, 302, 403, 200, 403, 302, 200),
    "admin/entitlements/parkedevent/<path:object_id>/": REDIRECT,
    "admin/entitlements/grantrequest/": (302, 302, 403, 200, 403, 302, 200),
    "admin/entitlements/grantrequest/add/": NOBODY,
    "admin/entitlements/grantrequest/<path:object_id>/history/": (
        302,
        302,
        403,
        200,
        403,
        302,
        200,
    ),
    "admin/entitlements/grantrequest/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/grantrequest/<path:object_id>/change/": (302, 302, 403, 200, 403, 302, 200),
    "admin/entitlements/grantrequest/<path:object_id>/": REDIRECT,
    "admin/entitlements/customerlink/": SUPERUSER_ONLY,
    "admin/entitlements/customerlink/add/": NOBODY,
    "admin/entitlements/customerlink/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/entitlements/customerlink/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/customerlink/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/entitlements/customerlink/<path:object_id>/": REDIRECT,
    "admin/entitlements/featureblock/": SUPPORT_AND_FINANCE_VIEW,
    "admin/entitlements/featureblock/add/": NOBODY,
    "admin/entitlements/featureblock/<path:object_id>/history/": SUPPORT_AND_FINANCE_VIEW,
    "admin/entitlements/featureblock/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/featureblock/<path:object_id>/change/": SUPPORT_AND_FINANCE_VIEW,
    "admin/entitlements/featureblock/<path:object_id>/": REDIRECT,
    "admin/entitlements/subscriptionstate/": SUPERUSER_ONLY,
    "admin/entitlements/subscriptionstate/add/": NOBODY,
    "admin/entitlements/subscriptionstate/<path:object_id>/history/": SUPERUSER_ONLY,
    "admin/entitlements/subscriptionstate/<path:object_id>/delete/": NOBODY,
    "admin/entitlements/subscriptionstate/<path:object_id>/change/": SUPERUSER_ONLY,
    "admin/entitlements/subscriptionstate/<path:object_id>/": REDIRECT,
    "admin/audit/auditevent/export/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditevent/dashboard/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditevent/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditevent/add/": NOBODY,
    "admin/audit/auditevent/<path:object_id>/history/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditevent/<path:object_id>/delete/": NOBODY,
    "admin/audit/auditevent/<path:object_id>/change/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditevent/<path:object_id>/": REDIRECT,
    "admin/audit/auditcheckpoint/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditcheckpoint/add/": NOBODY,
    "admin/audit/auditcheckpoint/<path:object_id>/history/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditcheckpoint/<path:object_id>/delete/": NOBODY,
    "admin/audit/auditcheckpoint/<path:object_id>/change/": (302, 302, 200, 403, 403, 302, 200),
    "admin/audit/auditcheckpoint/<path:object_id>/": REDIRECT,
    # The daily review: Finance views it and works/signs it by POST (GET answers 405).
    "admin/audit/dailyreview/<path:object_id>/work/": FINANCE_POST_ONLY,
    "admin/audit/dailyreview/<path:object_id>/sign-off/": FINANCE_POST_ONLY,
    "admin/audit/dailyreview/": FINANCE_VIEW,
    "admin/audit/dailyreview/add/": NOBODY,
    "admin/audit/dailyreview/<path:object_id>/history/": FINANCE_VIEW,
    "admin/audit/dailyreview/<path:object_id>/delete/": NOBODY,
    "admin/audit/dailyreview/<path:object_id>/change/": FINANCE_VIEW,
    "admin/audit/dailyreview/<path:object_id>/": REDIRECT,
    "admin/audit/dailyreview/<path:object_id>/evidence/": FINANCE_EVIDENCE_OF_OPEN_REVIEW,
    # The staff access review: Finance views it, starts, decides and completes it by POST.
    "admin/audit/accessreview/start/": FINANCE_POST_ONLY,
    "admin/audit/accessreview/<path:object_id>/decide/": FINANCE_POST_ONLY,
    "admin/audit/accessreview/<path:object_id>/complete/": FINANCE_POST_ONLY,
    "admin/audit/accessreview/<path:object_id>/evidence/": FINANCE_EVIDENCE_OF_OPEN_REVIEW,
    "admin/audit/accessreview/": FINANCE_VIEW,
    "admin/audit/accessreview/add/": NOBODY,
    "admin/audit/accessreview/<path:object_id>/history/": FINANCE_VIEW,
    "admin/audit/accessreview/<path:object_id>/delete/": NOBODY,
    "admin/audit/accessreview/<path:object_id>/change/": FINANCE_VIEW,
    "admin/audit/accessreview/<path:object_id>/": REDIRECT,
    "admin/djstripe/event/action/<str:action_name>/<str:model_name>/": STRIPE_SYNC,
    "admin/djstripe/event/": (302, 302, 200, 403, 403, 302, 200),
    "admin/djstripe/event/add/": NOBODY,
    "admin/djstripe/event/<path:object_id>/history/": (302, 302, 200, 403, 403, 302, 200),
    "admin/djstripe/event/<path:object_id>/delete/": NOBODY,
    "admin/djstripe/event/<path:object_id>/change/": FINANCE_VIEW,
    "admin/djstripe/event/<path:object_id>/": REDIRECT,
    "admin/djstripe/webhookeventtrigger/": (302, 302, 200, 403, 403, 302, 200),
    "admin/djstripe/webhookeventtrigger/add/": NOBODY,
    "admin/djstripe/webhookeventtrigger/<path:object_id>/history/": (
        302,
        302,
        200,
        403,
        403,
        302,
        200,
    ),
    "admin/djstripe/webhookeventtrigger/<path:object_id>/delete/": NOBODY,
    "admin/djstripe/webhookeventtrigger/<path:object_id>/change/": (
        302,
        302,
        200,
        403,
        403,
        302,
        200,
    ),
    "admin/djstripe/webhookeventtrigger/<path:object_id>/": REDIRECT,
    "admin/audit/": (302, 302, 200, 404, 404, 302, 200),
    "admin/auth/": (302, 302, 404, 404, 404, 302, 200),
    "admin/axes/": (302, 302, 404, 404, 404, 302, 200),
    "admin/djstripe/": (302, 302, 200, 404, 404, 302, 200),
    "admin/billing/": (302, 302, 200, 404, 200, 302, 200),
    "admin/entitlements/": ALL_STAFF,
    "admin/otp_static/": (302, 302, 404, 404, 404, 302, 200),
    "admin/otp_totp/": (302, 302, 404, 404, 404, 302, 200),
    "admin/<anything else>": (302, 302, 404, 404, 404, 302, 404),
    "api/schema/": (200, 200, 200, 200, 200, 200, 200),
    "stripe/webhook/<uuid:uuid>/": (405, 405, 405, 405, 405, 405, 405),
    # Anonymous API callers get 401 (the bearer-token challenge); staff actions need a second
    # factor, so the superuser signed in with the password only is refused (403).
    "api/entitlements/": (401, 200, 200, 200, 200, 200, 200),
    "api/entitlements/grant/": (401, 403, 403, 405, 403, 403, 405),
    "api/entitlements/revoke/": (401, 403, 403, 405, 403, 403, 405),
    # Staff API tokens: every staff member lists and creates their own; only superusers see
    # others' (the matrix's token belongs to a customer, so staff are sent back: 302).
    "admin/staff/": ALL_STAFF,
    "admin/staff/staffapitoken/": ALL_STAFF,
    "admin/staff/staffapitoken/add/": ALL_STAFF,
    "admin/staff/staffapitoken/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 200),
    "admin/staff/staffapitoken/<path:object_id>/delete/": NOBODY,
    "admin/staff/staffapitoken/<path:object_id>/change/": (302, 302, 302, 302, 302, 302, 200),
    "admin/staff/staffapitoken/<path:object_id>/": REDIRECT,
    **_djstripe_mirror_rows(),
}


def _walk(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def routes() -> list[str]:
    """Every route the project serves, as the resolver spells it."""
    return list(dict.fromkeys(_walk(get_resolver())))


APP_LIST_ROUTE = "admin/^(?P<app_label>{})/$"
CATCH_ALL_ROUTE = "admin/(?P<url>.*)$"
OBJECT_ID = "<path:object_id>"


def expand(route: str, objects: dict[str, str]) -> list[tuple[str, str]]:
    """(matrix key, concrete path) pairs for one route; a regex route gives several."""
    if route.startswith("admin/^(?P<app_label>"):
        return [(f"admin/{label}/", f"/admin/{label}/") for label in admin_app_labels()]
    if route == CATCH_ALL_ROUTE:
        return [("admin/<anything else>", "/admin/no-such-page/")]
    path = route
    if route.startswith("admin/r/"):
        path = f"admin/r/{objects.get('contenttype')}/{objects.get('auth.user')}/"
    elif route.startswith("stripe/webhook/"):
        path = "stripe/webhook/00000000-0000-4000-8000-000000000000/"
    elif route.startswith("admin/") and ("<" in route):
        app_label, model = route.split("/")[1:3]
        # Models without a row here (dj-stripe's mirror) are asked for a missing one.
        pk = objects.get(f"{app_label}.{model}", "missing")
        for placeholder in (OBJECT_ID, "<int:pk>", "<id>"):
            path = path.replace(placeholder, str(pk))
        # dj-stripe's "sync from Stripe" confirmation page of this model.
        path = path.replace("<str:action_name>", "_sync_all_instances")
        path = path.replace("<str:model_name>", model)
    return [(route, "/" + path)]


def admin_app_labels() -> list[str]:
    return sorted({model._meta.app_label for model in admin.site._registry})


@pytest.fixture
def objects(django_user_model) -> dict[str, str]:
    """One row of every model the admin shows (dj-stripe's mirror excepted), by label."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from djstripe.models import Event, WebhookEventTrigger

    from audit.access_review import access_review_start
    from audit.review import daily_review_create
    from audit.services import audit_checkpoint_create, audit_event_record
    from billing.models import StripeEvent
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
    from staff.api_tokens import api_token_create
    from tests.stripe_fixtures import event, resource

    owner = django_user_model.objects.create_user("customer", "customer@example.com")
    # Its customer is not mirrored: the Event page must not fetch it from Stripe (no network).
    paid = event("invoice.paid", resource("invoice"))
    feature = Feature.objects.first()
    access = {"user_agent": "test", "ip_address": "10.0.0.1", "username": "customer"}
    access_request = {**access, "http_accept": "*/*", "path_info": "/admin/login/"}
    rows = {
        "auth.group": Group.objects.get(name=staff_roles.FINANCE.group),
        "auth.user": owner,
        "otp_totp.totpdevice": TOTPDevice.objects.create(user=owner, name="phone"),
        "otp_static.staticdevice": StaticDevice.objects.create(user=owner, name="codes"),
        "axes.accessattempt": AccessAttempt.objects.create(
            **access_request, get_data="", post_data="", failures_since_start=1
        ),
        "axes.accesslog": AccessLog.objects.create(**access_request),
        "axes.accessfailurelog": AccessFailureLog.objects.create(**access_request),
        "billing.stripeevent": StripeEvent.objects.create(
            event_id=paid["id"], type=paid["type"], created=paid["created"], payload=paid
        ),
        "djstripe.event": Event.objects.create(
            id=paid["id"],
            type=paid["type"],
            data=paid["data"],
            livemode=paid["livemode"],
            api_version=paid["api_version"],
        ),
        "djstripe.webhookeventtrigger": WebhookEventTrigger.objects.create(
            remote_ip="10.0.0.1", headers={}, body="{}"
        ),
        "entitlements.entitlement": Entitlement.objects.create(
            user=owner,
            feature=feature,
            source="manual",
            reason="matrix",
            starts_at=timezone.now(),
        ),
        "entitlements.plan": Plan.objects.first(),
        "entitlements.feature": feature,
        "entitlements.planfeature": PlanFeature.objects.first(),
        "entitlements.unknownprice": UnknownPrice.objects.create(price_id="price_matrix"),
        "entitlements.parkedevent": ParkedEvent.objects.create(
            event_id="evt_parked", event_type="x", stripe_customer_id="cus_1", created=1, payload={}
        ),
        "entitlements.grantrequest": GrantRequest.objects.create(
            user_ids=[owner.pk], plan_code="vip", reason="matrix", entitlement_count=5
        ),
        "entitlements.customerlink": CustomerLink.objects.create(
            stripe_customer_id="cus_matrix", user=owner, learnt_from="test"
        ),
        "entitlements.featureblock": FeatureBlock.objects.create(
            user=owner, feature=feature, reason="matrix"
        ),
        "entitlements.subscriptionstate": SubscriptionState.objects.create(
            stripe_subscription_id="sub_matrix", stripe_customer_id="cus_matrix"
        ),
        "audit.auditevent": audit_event_record(action="audit.chain.verified"),
        "audit.auditcheckpoint": audit_checkpoint_create(),
        "staff.staffapitoken": api_token_create(
            user=owner, name="matrix", lifetime=timedelta(days=1), now=timezone.now()
        )[0],
        "audit.dailyreview": daily_review_create(day=timezone.now().date()),
        "audit.accessreview": access_review_start(user=owner),
    }
    found = {label: str(row.pk) for label, row in rows.items()}
    found["contenttype"] = str(ContentType.objects.get_for_model(django_user_model).pk)
    return found


# The staff columns are the registry's roles, each signed in as a member of its group.
GROUPS = {role.key: role.group for role in staff_roles.ROLES}


def signed_in(client, role: str, django_user_model):
    from tests.staff_login import staff_login

    if role == "anonymous":
        return client
    if role == "user":
        client.force_login(django_user_model.objects.create_user("plain"))
        return client
    if role in ("su_no_2fa", "superuser"):
        user = django_user_model.objects.create_superuser(role, f"{role}@example.com")
        if role == "su_no_2fa":
            client.force_login(user)  # password only: no second factor in this session
            return client
        return staff_login(client, user)
    user = django_user_model.objects.create_user(role, is_staff=True)
    user.groups.add(Group.objects.get(name=GROUPS[role]))
    return staff_login(client, user)


def observed(client, objects) -> dict[str, int]:
    client.raise_request_exception = False  # a crashing page is a 500 in the matrix
    statuses = {}
    for route in routes():
        for key, path in expand(route, objects):
            statuses[key] = client.get(path).status_code
    return statuses


def matrix_markdown() -> str:
    """MATRIX as the Markdown table docs/access.md carries."""
    lines = [
        "| URL | " + " | ".join(ROLES) + " |",
        "| --- |" + " --- |" * len(ROLES),
    ]
    for route, statuses in MATRIX.items():
        lines.append(f"| `/{route}` | " + " | ".join(str(s) for s in statuses) + " |")
    return "\n".join(lines) + "\n"


def test_every_url_is_in_the_matrix_and_every_row_is_a_url():
    served = {key for route in routes() for key, _ in expand(route, {})}
    assert sorted(served - MATRIX.keys()) == [], "decide who may see these pages: add to MATRIX"
    assert sorted(MATRIX.keys() - served) == [], "these rows name no URL any more"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_expected_status(role, client, objects, django_user_model):
    got = observed(signed_in(client, role, django_user_model), objects)
    column = ROLES.index(role)
    wrong = {
        key: f"expected {MATRIX[key][column]}, got {status}"
        for key, status in got.items()
        if key in MATRIX and MATRIX[key][column] != status
    }
    assert wrong == {}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["finance", "superuser"])
@pytest.mark.parametrize(
    ("model", "edit"),
    [
        ("auditevent", {"reason": "edited"}),
        ("dailyreview", {"chain_ok": "on"}),
        ("accessreview", {"interval_days": "1"}),
    ],
)
def test_nobody_changes_or_deletes_audit_records_by_post(
    role, model, edit, client, objects, django_user_model
):
    from django.apps import apps

    records = apps.get_model("audit", model).objects
    signed_in(client, role, django_user_model)
    pk = objects[f"audit.{model}"]
    before = records.values().get(pk=pk)
    base = f"/admin/audit/{model}/{pk}"
    assert client.post(f"{base}/change/", edit).status_code == 403
    assert client.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert records.values().get(pk=pk) == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["finance", "support", "billing_admin"])
def test_staff_cannot_make_dj_stripe_sync_from_stripe(role, client, django_user_model):
    # The confirmation form's POST would call Stripe for every object and rewrite the mirror.
    signed_in(client, role, django_user_model)
    url = "/admin/djstripe/customer/action/_sync_all_instances/customer/"
    response = client.post(url, {"_selected_action": ["_sync_all_instances"]})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_every_role_of_the_registry_has_a_column():
    staff_columns = [column for column in ROLES if column in GROUPS]
    assert sorted(staff_columns) == sorted(GROUPS), "add the new role's column to MATRIX"


def test_docs_carry_the_same_table():
    from django.conf import settings

    docs = (settings.BASE_DIR / "docs" / "access.md").read_text(encoding="utf-8")
    assert matrix_markdown() in docs, "regenerate docs/access.md's table from MATRIX"
