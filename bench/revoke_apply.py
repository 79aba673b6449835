"""A webhook apply and a staff revoke for the same user, at the same moment, many times over:
issue 14's target is no deadlock and no 503 in 1,000 iterations.

Driven through the services in two threads, each on its own database connection: the apply
as billing's Celery task runs it (`event_apply`), the revoke as the staff view and API run it
(`entitlements_revoke_for_user`). The race is between these two database transactions; a
barrier starts them together on every iteration, which the HTTP and Celery hops in front of
them would only blur (and on a shared 2-core machine, slow down tenfold). A deadlock reaches
the caller as an OperationalError, which the web tier answers with a 503 (config/problems.py):
each one is counted as the 503 a staff member would have seen.
"""

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from django.contrib.auth import get_user_model
from django.db import OperationalError, connections
from django.utils import timezone

from bench import events

FEATURE = "signals_premium"  # granted by the premium plan of the lifecycle events


@dataclass
class RaceResult:
    iterations: int = 0
    deadlocks: int = 0
    service_unavailable: int = 0  # OperationalError (deadlocks too): a 503 through the web tier
    errors: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {
            "iterations": self.iterations,
            "deadlocks": self.deadlocks,
            "would_be_503": self.service_unavailable,
            "errors": len(self.errors),
            "inconsistent_final_states": len(self.inconsistent),
            "iterations_per_s": round(self.iterations / self.seconds, 1) if self.seconds else 0,
        }


def _apply(payload: dict) -> bool:
    """What billing's task does with an event in the inbox."""
    from billing import services as billing_services
    from billing.models import StripeEvent

    customer_id = payload["data"]["object"]["customer"]
    StripeEvent.objects.create(
        event_id=payload["id"], type=payload["type"], created=payload["created"],
        customer_id=customer_id, payload=payload,
    )  # fmt: skip
    return billing_services.event_apply(event_id=payload["id"], customer_id=customer_id)


def _renewal(created_event: dict) -> dict:
    """customer.subscription.updated for the same subscription, a period later."""
    renewed = copy.deepcopy(created_event)
    renewed["id"] = created_event["id"] + "r"
    renewed["type"] = "customer.subscription.updated"
    renewed["created"] = created_event["created"] + 1
    item = renewed["data"]["object"]["items"]["data"][0]
    item["current_period_end"] += 30 * events.DAY
    return renewed


def _classify(error: BaseException, result: RaceResult, label: str) -> None:
    if isinstance(error, OperationalError):
        if isinstance(error.__cause__, psycopg.errors.DeadlockDetected):
            result.deadlocks += 1
        result.service_unavailable += 1
    result.errors.append(f"{label}: {error!r}")


def _final_state_problem(user, renewal: dict) -> str:
    """The revoke sticks whichever committed first: no live grant of the feature, a block in
    force, and the webhook applied (its effect on the feature is held back by the block)."""
    from billing.models import StripeEvent
    from entitlements.models import FeatureBlock
    from entitlements.selectors import active_entitlements

    live = active_entitlements(now=timezone.now()).filter(user=user, feature__lookup_key=FEATURE)
    if live.exists():
        return f"user {user.pk}: {FEATURE} still granted after the revoke"
    if not FeatureBlock.objects.filter(
        user=user, feature__lookup_key=FEATURE, lifted_at__isnull=True
    ).exists():
        return f"user {user.pk}: no block in force after the staff revoke"
    status = StripeEvent.objects.values_list("status", flat=True).get(event_id=renewal["id"])
    if status != StripeEvent.Status.APPLIED:
        return f"user {user.pk}: the webhook ended {status}"
    return ""


def revoke_apply_race(iterations: int, *, staff) -> RaceResult:
    """`iterations` users, each with a live Stripe grant; for each, a renewal webhook applied
    and a staff revoke of the feature started together. Counts deadlocks, would-be 503s, other
    errors, and users whose final state is not what either order of commits gives."""
    from config.context import Actor
    from entitlements.services import entitlements_revoke_for_user

    result = RaceResult()
    run = events.new_run_id()
    user_model = get_user_model()
    actor = Actor(kind="user", user_id=staff.pk)
    started = time.perf_counter()

    def revoke(user, barrier):
        try:
            barrier.wait()
            entitlements_revoke_for_user(
                user=user, revoked_by=staff, actor=actor, reason="support ticket",
                feature_key=FEATURE,
            )  # fmt: skip
        except Exception as error:  # counted, never swallowed silently
            _classify(error, result, "revoke")
        finally:
            connections.close_all()  # this thread's connection

    def webhook(payload, barrier):
        try:
            barrier.wait()
            _apply(payload)
        except Exception as error:
            _classify(error, result, "apply")
        finally:
            connections.close_all()

    try:
        with ThreadPoolExecutor(2) as pool:
            for n in range(iterations):
                user = user_model.objects.create_user(username=f"race{run}-{n}")
                checkout, created = events.subscription_lifecycle(
                    user_id=user.pk, n=n, run=run, created=events.now()
                )
                _apply(checkout)
                _apply(created)
                renewal = _renewal(created)
                together = threading.Barrier(2)
                racing = (
                    pool.submit(revoke, user, together),
                    pool.submit(webhook, renewal, together),
                )
                for future in racing:
                    future.result(timeout=60)
                problem = _final_state_problem(user, renewal)
                if problem:
                    result.inconsistent.append(problem)
                result.iterations += 1
    finally:
        result.seconds = time.perf_counter() - started
    return result


def bench_revoke_apply(ctx, report) -> None:
    staff = get_user_model().objects.create_superuser(
        f"bench-staff-{events.new_run_id()}", "", "bench-pass-1234"
    )
    result = revoke_apply_race(ctx.n(1000), staff=staff)
    report.section(
        "revoke_apply",
        "A webhook apply and a staff revoke for the same user at once (services in 2 threads)",
        {**result.summary(), "first_problems": (result.errors + result.inconsistent)[:3]},
    )


SCENARIOS = {"revoke_apply": bench_revoke_apply}
