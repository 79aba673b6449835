"""The Stripe webhook endpoint: cheap checks first, verify, store once, answer fast.

Processing happens later in Celery (billing/tasks.py); this view never calls Stripe's API, so
a Stripe outage cannot turn a delivery into a 500.
"""

import json
import time
from typing import Any, NoReturn
from uuid import UUID

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from billing import errors, metrics, rejections, selectors, services
from billing.verification import verify_signature
from config import context
from config.problems import render_problem

MAX_ID_LENGTH = 255


@csrf_exempt
def stripe_webhook(request: HttpRequest, uuid: UUID) -> HttpResponse:
    # Cheapest first, and nothing parsed before the signature: the endpoint (cached) and the
    # signature decide whether the body is worth reading as JSON at all.
    body, endpoint_id = None, None
    try:
        if request.method != "POST":
            raise errors.WebhookMethodNotAllowed("Stripe webhooks are delivered with POST.")
        _refuse_declared_oversize(request)
        header = request.headers.get("Stripe-Signature", "")
        if not header:
            raise errors.WebhookSignatureMissing("The Stripe-Signature header is required.")
        auth = selectors.endpoint_auth(uuid=uuid)
        if auth is None:
            raise errors.WebhookEndpointUnknown(f"No webhook endpoint {uuid}.")
        endpoint_id = auth.endpoint_id
        body = _read_body(request)
        verify_signature(
            header=header, body=body, secrets=auth.secrets, tolerance=auth.tolerance,
            now=time.time(),
        )  # fmt: skip
        event, event_json = _parse_event(body)
    except errors.WebhookError as error:
        return _reject(request, error, body=body, endpoint_id=endpoint_id)

    delivery = services.delivery_from_request(request, body=body)
    accepted = services.event_receive(
        event=event, event_json=event_json, endpoint_id=endpoint_id, delivery=delivery
    )
    event_id = event["id"]
    return JsonResponse({"status": "accepted" if accepted else "duplicate", "event_id": event_id})


def _too_large() -> errors.WebhookPayloadTooLarge:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return errors.WebhookPayloadTooLarge(
        f"The request body is larger than the {limit} bytes this endpoint accepts."
    )


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _refuse_declared_oversize(request: HttpRequest) -> None:
    # Refused before reading, so an oversized body never reaches memory.
    if _declared_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise _too_large()


def _read_body(request: HttpRequest) -> bytes:
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_large() from None
    if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise _too_large()
    return body


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _parse_event(body: bytes) -> tuple[dict[str, Any], str]:
    """The event and its JSON text as the inbox's jsonb will hold it (dumped once, here: the
    check that PostgreSQL can store it and the insert's value are the same text)."""
    malformed = errors.WebhookMalformedEvent
    try:
        # NaN and Infinity are Python's extensions, not JSON: PostgreSQL's jsonb refuses them.
        event = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise malformed("The body is not JSON.") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise malformed("The body is not a Stripe event object.")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    data = event.get("data")
    if not (isinstance(event_id, str) and event_id.startswith("evt_")):
        raise malformed("The event has no `evt_` id.")
    if len(event_id) > MAX_ID_LENGTH or not event_id.isprintable():
        raise malformed("The event id is not a Stripe id.")
    if not (isinstance(event_type, str) and event_type and len(event_type) <= MAX_ID_LENGTH):
        raise malformed("The event has no type.", event_id=event_id)
    if type(created) is not int or not 0 <= created < 2**62:
        raise malformed("The event has no integer `created`.", event_id=event_id)
    if not isinstance(event.get("livemode", False), bool):
        raise malformed("The event's `livemode` is not a boolean.", event_id=event_id)
    if not (isinstance(data, dict) and isinstance(data.get("object"), dict)):
        raise malformed("The event has no `data.object`.", event_id=event_id)
    event.setdefault("livemode", False)
    try:
        # A number beyond a float's range (1e400) was parsed as infinity, which jsonb refuses.
        dumped = json.dumps(event, ensure_ascii=False, allow_nan=False)  # NUL stays \u0000
    except ValueError:
        raise malformed("The event holds a number out of range.", event_id=event_id) from None
    # PostgreSQL's jsonb holds neither the NUL character nor lone UTF-16 surrogates.
    try:
        storable = "\\u0000" not in dumped and bool(dumped.encode("utf-8"))
    except UnicodeEncodeError:
        storable = False
    if not storable:
        raise malformed("The event holds characters that cannot be stored.", event_id=event_id)
    return event, dumped


def _count(error: errors.WebhookError) -> None:
    # Every refusal, throttled or not: the counters are the full picture, the stores are not.
    if isinstance(error, errors.WebhookSignatureMissing | errors.WebhookSignatureInvalid):
        metrics.webhook_invalid_sig.inc()
    if isinstance(error, errors.WebhookTimestampOutOfTolerance):
        metrics.webhook_replay_block.labels(reason="stale_timestamp").inc()
    metrics.webhook_rejected.labels(problem=error.slug).inc()


def _reject(
    request: HttpRequest,
    error: errors.WebhookError,
    *,
    body: bytes | None,
    endpoint_id: str | None,
) -> HttpResponse:
    """Count the refusal, keep a bounded trace of it, answer problem+json (docs/webhooks.md).

    Constant storage per client address: the audit trail gets one row per address, problem and
    minute (billing/rejections.py); a delivery row without the body is kept only while the
    address is under the refusal limit, and beyond it the answer is 429 `throttled`.
    """
    _count(error)
    address = rejections.client_address(context.current_client()[0])
    rejections.rejection_count(
        address=address, problem=error.slug, status=error.status, now=timezone.now()
    )
    allowance = rejections.rejection_allowance(address=address, now=time.time())
    if allowance.retry_after is not None:
        metrics.webhook_throttled.inc()
        throttled = errors.WebhookThrottled(
            f"Too many refused deliveries from this address; retry in {allowance.retry_after} s."
        )
        response = render_problem(request, throttled)
        response["Retry-After"] = str(allowance.retry_after)
        return response
    if request.method == "POST" and allowance.record:
        summary = rejections.body_summary(body=body, declared_length=_declared_length(request))
        delivery = services.delivery_from_request(request, body=summary.encode())
        services.webhook_trigger_record(
            delivery=delivery, endpoint_id=endpoint_id, valid=False, exception=error.slug
        )
    response = render_problem(request, error)
    if isinstance(error, errors.WebhookMethodNotAllowed):
        response["Allow"] = "POST"
    return response
