"""The Stripe webhook endpoint: cheap checks first, verify, store once, answer fast.

Processing happens later in Celery (billing/tasks.py); this view never calls Stripe's API, so
a Stripe outage cannot turn a delivery into a 500.
"""

import json
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from billing import errors, metrics, selectors, services, signals
from billing.verification import verify_signature
from config import context
from config.problems import render_problem

MAX_ID_LENGTH = 255


@csrf_exempt
def stripe_webhook(request, uuid):
    body, endpoint_id, event_id = b"", None, None
    try:
        if request.method != "POST":
            raise errors.WebhookMethodNotAllowed("Stripe webhooks are delivered with POST.")
        body = _read_body(request)
        header = request.headers.get("Stripe-Signature", "")
        if not header:
            raise errors.WebhookSignatureMissing("The Stripe-Signature header is required.")
        event = _parse_event(body)
        event_id = event["id"]
        auth = selectors.endpoint_auth(uuid=uuid)
        if auth is None:
            raise errors.WebhookEndpointUnknown(f"No webhook endpoint {uuid}.")
        endpoint_id = auth.endpoint_id
        verify_signature(
            header=header, body=body, secrets=auth.secrets, tolerance=auth.tolerance,
            now=time.time(),
        )  # fmt: skip
    except errors.WebhookError as error:
        return _reject(request, error, body=body, endpoint_id=endpoint_id, event_id=event_id)

    delivery = services.delivery_from_request(request, body=body)
    accepted = services.event_receive(event=event, endpoint_id=endpoint_id, delivery=delivery)
    return JsonResponse({"status": "accepted" if accepted else "duplicate", "event_id": event_id})


def _read_body(request) -> bytes:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_large = errors.WebhookPayloadTooLarge(
        f"The request body is larger than the {limit} bytes this endpoint accepts."
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refused before reading, so an oversized body never reaches memory.
    if declared > limit:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return body


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _parse_event(body: bytes) -> dict:
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
    # PostgreSQL's jsonb holds neither the NUL character nor lone UTF-16 surrogates.
    dumped = json.dumps(event, ensure_ascii=False)  # NUL stays escaped as \u0000 here
    try:
        storable = "\\u0000" not in dumped and bool(dumped.encode("utf-8"))
    except UnicodeEncodeError:
        storable = False
    if not storable:
        raise malformed("The event holds characters that cannot be stored.", event_id=event_id)
    event.setdefault("livemode", False)
    return event


def _reject(request, error: errors.WebhookError, *, body: bytes, endpoint_id, event_id):
    """Record the attempt, count it, tell audit, answer problem+json."""
    if event_id is not None:
        error.extensions.setdefault("event_id", event_id)
    if isinstance(error, errors.WebhookSignatureMissing | errors.WebhookSignatureInvalid):
        metrics.webhook_invalid_sig.inc()
    if isinstance(error, errors.WebhookTimestampOutOfTolerance):
        metrics.webhook_replay_block.labels(reason="stale_timestamp").inc()
    metrics.webhook_rejected.labels(problem=error.slug).inc()
    remote_ip, user_agent = context.current_client()
    if request.method == "POST":
        delivery = services.delivery_from_request(request, body=body)
        services.webhook_trigger_record(
            delivery=delivery, endpoint_id=endpoint_id, valid=False, exception=error.slug
        )
    signals.webhook_rejected.send(
        sender=stripe_webhook,
        problem=error.slug,
        status=error.status,
        detail=error.detail,
        event_id=event_id,
        remote_ip=remote_ip,
        user_agent=user_agent,
        request_id=getattr(request, "request_id", None),
    )
    response = render_problem(request, error)
    if isinstance(error, errors.WebhookMethodNotAllowed):
        response["Allow"] = "POST"
    return response
