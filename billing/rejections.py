"""Refused webhook deliveries cost constant storage, however many arrive.

Anyone can POST to the webhook URL, so a refusal must not grow anything permanent per request:

- Throttle: each client address may be refused BILLING_WEBHOOK_REJECTION_LIMIT times per
  BILLING_WEBHOOK_REJECTION_WINDOW_SECONDS (a Redis counter per address and window). Beyond
  that it gets 429 `throttled` with Retry-After, and its refusals write no delivery row.
  Deliveries that verify are never throttled: the counter only counts refusals.
- Delivery rows: a refused delivery under the limit is recorded without its body (its size and
  SHA-256 only) and purged after BILLING_REJECTED_DELIVERY_RETENTION_HOURS.
- Audit: one row per address, problem and minute, with the count. The first refusal of a
  bucket inserts one RejectionBucket row (the durable note that the bucket exists); the count
  is a Redis counter. Once the minute has closed (plus a minute's grace for clocks that differ
  between web processes), the beat task rejection_counts_flush sends one webhook_rejected
  signal per bucket (audit writes the row) and deletes the bucket in the same transaction, so
  a bucket is reported exactly once. Counts are never lost silently: while Redis is down they
  go to the bucket row instead (`extra_count`, one UPDATE per refusal until Redis is back);
  if Redis lost a counter (flushed, restarted, evicted) the audit row says `count_incomplete`
  and the count is a lower bound. The Prometheus counters count every refusal regardless.

IPv6 addresses are taken per /64 network (what one host usually gets), so rotating addresses
inside it neither escapes the throttle nor multiplies buckets.
"""

import functools
import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from djstripe.models import WebhookEventTrigger

from billing import signals
from billing.models import RejectionBucket

# Redis keeps a bucket's counter long enough for a beat that was down a while to flush it.
BUCKET_CACHE_SECONDS = 24 * 3600
FLUSH_BATCH = 500
PURGE_BATCH = 5000
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 - a placeholder value, not a bind address


@dataclass(frozen=True)
class Allowance:
    """What a refusal may cost: a delivery row (`record`), or only a 429 (`retry_after`)."""

    record: bool
    retry_after: int | None = None


def client_address(remote_ip: str | None) -> str:
    """The address refusals are counted under: the IP, or its /64 network for IPv6."""
    try:
        address = ipaddress.ip_address(remote_ip or "")
    except ValueError:
        return UNKNOWN_ADDRESS
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def body_summary(*, body: bytes | None, declared_length: int) -> str:
    """What a refused delivery keeps of its body: the size and hash, never the bytes."""
    if body is None:
        return f"[not stored: {declared_length} bytes declared, not read]"
    return f"[not stored: {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()}]"


def _cache_increment(key: str, *, timeout: int) -> int | None:
    """The counter after adding one; None when the cache is unavailable."""
    added = cache.add(key, 1, timeout=timeout)
    if added:
        return 1
    if added is None:  # django-redis swallowed a connection error (IGNORE_EXCEPTIONS)
        return None
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        return 1 if cache.add(key, 1, timeout=timeout) else None


def rejection_allowance(*, address: str, now: float) -> Allowance:
    """Count one refusal of `address` in the current window and say what it may cost.

    With Redis unavailable nothing can be counted: the refusal is answered as usual but writes
    no delivery row, so storage stays bounded (fail closed for storage, open for callers).
    """
    window = settings.BILLING_WEBHOOK_REJECTION_WINDOW_SECONDS
    start = math.floor(now / window) * window
    seen = _cache_increment(f"billing:webhook:refusals:{address}:{start}", timeout=window)
    if seen is None:
        return Allowance(record=False)
    if seen > settings.BILLING_WEBHOOK_REJECTION_LIMIT:
        return Allowance(record=False, retry_after=max(1, math.ceil(start + window - now)))
    return Allowance(record=True)


def _bucket_key(*, minute: datetime, address: str, problem: str) -> str:
    return f"billing:webhook:rejected:{minute:%Y%m%d%H%M}:{address}:{problem}"


def rejection_count(*, address: str, problem: str, status: int, now: datetime) -> None:
    """Add one refusal to its (address, problem, minute) bucket for the audit trail."""
    minute = now.replace(second=0, microsecond=0)
    bucket = {"minute": minute, "remote_ip": address, "problem": problem}
    key = _bucket_key(minute=minute, address=address, problem=problem)
    added = cache.add(key, 1, timeout=BUCKET_CACHE_SECONDS)
    if added:
        row, created = RejectionBucket.objects.get_or_create(
            **bucket, defaults={"status": status, "counted_in_cache": True}
        )
        if not created:
            # The row predates this counter: either Redis was down (counts are in extra_count)
            # or Redis lost the counter it had, and with it part of the count.
            RejectionBucket.objects.filter(pk=row.pk).update(
                counted_in_cache=True, incomplete=row.incomplete or row.counted_in_cache
            )
        return
    if added is False:
        try:
            if cache.incr(key) is not None:
                return
        except ValueError:  # the counter expired between add() and incr()
            pass
    _count_in_database(bucket=bucket, status=status)


def _count_in_database(*, bucket: dict[str, Any], status: int) -> None:
    """Redis is unavailable: count in the bucket row (an UPDATE, no new row)."""
    if RejectionBucket.objects.filter(**bucket).update(extra_count=F("extra_count") + 1):
        return
    _, created = RejectionBucket.objects.get_or_create(
        **bucket, defaults={"status": status, "extra_count": 1}
    )
    if not created:
        RejectionBucket.objects.filter(**bucket).update(extra_count=F("extra_count") + 1)


def rejection_counts_flush(*, now: datetime) -> int:
    """Report every closed bucket once (webhook_rejected -> one audit row); returns how many.

    A bucket closes when its minute is over; one more minute of grace lets web processes whose
    clocks lag finish counting. Reporting and deleting the bucket share a transaction, so a
    failure reports it again next time rather than never; Redis counters go after the commit.
    """
    if cache.add("billing:webhook:rejected:flush-probe", 1, timeout=1) is None:
        return 0  # Redis unreachable: its counters are not lost, just not readable; next time
    closed_before = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    reported = 0
    while True:
        with transaction.atomic():
            buckets = list(
                RejectionBucket.objects.select_for_update(skip_locked=True)
                .filter(minute__lt=closed_before)
                .order_by("minute", "pk")[:FLUSH_BATCH]
            )
            if not buckets:
                return reported
            keys = [
                _bucket_key(minute=b.minute, address=b.remote_ip, problem=b.problem)
                for b in buckets
            ]
            counted = cache.get_many(keys)
            for bucket, key in zip(buckets, keys, strict=True):
                _report(bucket, cached=counted.get(key))
            RejectionBucket.objects.filter(pk__in=[b.pk for b in buckets]).delete()
            # keys bound now: the loop's next batch rebinds the name before the commit.
            transaction.on_commit(functools.partial(cache.delete_many, keys))
        reported += len(buckets)


def _report(bucket: RejectionBucket, *, cached: object) -> None:
    incomplete = bucket.incomplete
    count = bucket.extra_count
    if bucket.counted_in_cache:
        if isinstance(cached, int) and cached > 0:
            count += cached
        else:  # the counter is gone: at least the refusal that opened the bucket happened
            count += 1
            incomplete = True
    signals.webhook_rejected.send(
        sender=RejectionBucket,
        problem=bucket.problem,
        status=bucket.status,
        count=count,
        count_incomplete=incomplete,
        remote_ip=bucket.remote_ip,
        minute=bucket.minute,
    )


def rejected_deliveries_purge(*, older_than: timedelta, now: datetime) -> int:
    """Delete refused delivery rows older than the retention; returns how many.

    Only rows with valid=False go: every stored event keeps the delivery that brought it. The
    audit trail's aggregated rows stay.
    """
    cutoff = now - older_than
    deleted = 0
    while True:
        batch = list(
            WebhookEventTrigger.objects.filter(valid=False, created__lt=cutoff).values_list(
                "pk", flat=True
            )[:PURGE_BATCH]
        )
        if not batch:
            return deleted
        deleted += WebhookEventTrigger.objects.filter(pk__in=batch).delete()[0]
