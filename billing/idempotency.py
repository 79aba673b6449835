"""Idempotency-Key for our own write APIs (draft-ietf-httpapi-idempotency-key-header).

Usage, on a DRF APIView handler::

    from billing.idempotency import idempotent

    class GrantView(APIView):
        @idempotent(operation="entitlement_grant")
        def post(self, request): ...

A request carrying `Idempotency-Key: <key>` runs once per (user, key, operation):
- the same key with the same method, path and body replays the stored response (header
  `Idempotent-Replayed: true`) and counts `idempotent_hits_total{operation}`;
- the same key with a different request answers 422 `idempotency-key-reused`;
- the same key while the first request still runs answers 409 `idempotency-key-in-progress`
  (also when the first request failed while this one was looking: retrying runs it again).
Responses of 5xx (or an exception) are not stored: the key is released so the client can retry.
Records are kept at least 24 hours (BILLING_IDEMPOTENCY_RETENTION_HOURS), then purged hourly.
The in-progress record is committed before the handler runs, so do not wrap the view in an
outer transaction (ATOMIC_REQUESTS is off): the handler opens its own `transaction.atomic()`.
Operations must be registered (they become metric label values, a small fixed set).
"""

import functools
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Concatenate, ParamSpec, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from billing import metrics
from billing.db import insert_ignoring_conflict
from billing.errors import IdempotencyKeyInProgress, IdempotencyKeyInvalid, IdempotencyKeyReused
from billing.models import IdempotencyRecord

HEADER = "Idempotency-Key"
# A handler's view (`self`), request and other arguments, passed through the decorator unchanged.
_View = TypeVar("_View")
_Request = TypeVar("_Request", bound=Request)
_Args = ParamSpec("_Args")
MAX_KEY_LENGTH = 255
OPERATIONS: set[str] = {"webhook", "entitlement_grant", "entitlement_revoke"}


def register_operation(name: str) -> str:
    """Add an operation name (a metric label value) to the fixed set; returns it."""
    if not name.isidentifier() or len(name) > 64:
        raise ValueError(f"Operation names are short identifiers, not {name!r}")
    OPERATIONS.add(name)
    return name


def request_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    # Django sets method on every request it serves; the stubs allow None for a bare HttpRequest.
    method = request.method or ""
    for part in (method.encode(), request.get_full_path().encode(), request.body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()


def idempotent(
    *, operation: str, required: bool = False
) -> Callable[
    [Callable[Concatenate[_View, _Request, _Args], HttpResponse]],
    Callable[Concatenate[_View, _Request, _Args], HttpResponse],
]:
    """Decorate a DRF view handler (`def post(self, request, ...)`) with Idempotency-Key."""
    if operation not in OPERATIONS:
        raise ValueError(f"Unknown idempotency operation {operation!r}: register_operation() it")

    def decorator(
        handler: Callable[Concatenate[_View, _Request, _Args], HttpResponse],
    ) -> Callable[Concatenate[_View, _Request, _Args], HttpResponse]:
        @functools.wraps(handler)
        def wrapper(
            view: _View, request: _Request, *args: _Args.args, **kwargs: _Args.kwargs
        ) -> HttpResponse:
            key = request.headers.get(HEADER)
            if key is None or not request.user.is_authenticated:
                if required:
                    raise IdempotencyKeyInvalid(f"This endpoint requires an {HEADER} header.")
                return handler(view, request, *args, **kwargs)
            if not _valid_key(key):
                raise IdempotencyKeyInvalid(
                    f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
                )
            record = IdempotencyRecord(
                user=request.user,
                key=key,
                operation=operation,
                fingerprint=request_fingerprint(request),
            )
            # Committed before the handler runs, so a concurrent twin sees it and gets a 409.
            fields = ["user", "key", "operation"]
            if insert_ignoring_conflict(record, conflict_fields=fields) is None:
                return _replay(request, record, operation=operation)
            try:
                response = handler(view, request, *args, **kwargs)
            except BaseException:
                IdempotencyRecord.objects.filter(pk=record.pk).delete()
                raise
            _store(record, response)
            return response

        # mypy cannot match functools.wraps' _Wrapped to a Concatenate signature (mypy#16399).
        return wrapper  # type: ignore[return-value]

    return decorator


def _replay(request: Request, record: IdempotencyRecord, *, operation: str) -> HttpResponse:
    stored = IdempotencyRecord.objects.filter(
        user=record.user, key=record.key, operation=record.operation
    ).first()
    if stored is None:
        # Between our insert and this read the first request failed and released the key: it
        # is free again, and a retry runs the request.
        raise IdempotencyKeyInProgress(
            f"The first request with this {HEADER} has just failed; retry to run it again."
        )
    if stored.fingerprint != record.fingerprint:
        raise IdempotencyKeyReused(
            f"This {HEADER} was used for a different request; use a new key."
        )
    if stored.status != IdempotencyRecord.Status.COMPLETED:
        raise IdempotencyKeyInProgress(
            f"The first request with this {HEADER} has not finished; retry later."
        )
    metrics.idempotent_hits.labels(operation=operation).inc()
    response = HttpResponse(
        stored.response_body,
        status=stored.response_status,
        content_type=stored.response_content_type or None,
    )
    response["Idempotent-Replayed"] = "true"
    return response


def _store(record: IdempotencyRecord, response: HttpResponse) -> None:
    if response.status_code >= 500:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    if isinstance(response, Response):
        # Not rendered yet (DRF renders after the handler): store the data as JSON.
        body, content_type = JSONRenderer().render(response.data).decode(), "application/json"
    else:
        body = response.content.decode("utf-8", errors="replace")
        content_type = response.get("Content-Type", "")[:128]
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED,
        response_status=response.status_code,
        response_content_type=content_type,
        response_body=body,
    )


def idempotency_records_purge() -> int:
    """Delete records older than the retention (never less than 24 hours); returns the count."""
    cutoff = timezone.now() - timedelta(hours=settings.BILLING_IDEMPOTENCY_RETENTION_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created__lt=cutoff).delete()
    return deleted
