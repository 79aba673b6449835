"""One simulator run: build the scenarios for their demo users and deliver them."""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from billing.simulator import fake_api, local
from billing.simulator.scenarios import Scenario, build
from billing.simulator.sender import Sender, Summary, deliver


@dataclass
class Run:
    summary: Summary = field(default_factory=Summary)
    scenarios: list[Scenario] = field(default_factory=list)

    @property
    def deliveries(self) -> int:
        return sum(len(scenario.deliveries) for scenario in self.scenarios)


def plan(*, names: list[str], customers: int, seed: int | None, now: int | None = None) -> Run:
    """Every scenario's events, for demo users created (or found) in the local database."""
    rng = random.Random(seed)
    now = int(time.time()) if now is None else now
    run = Run()
    for name in names:
        users = local.demo_users(scenario=name, count=customers)
        run.scenarios.append(build(name, user_ids=[user.pk for user in users], rng=rng, now=now))
    return run


def execute(
    run: Run, *, sender: Sender, progress: Callable[[int], object] = lambda n: None
) -> Summary:
    """Deliver the scenarios one after the other; answers are tallied in run.summary."""
    for scenario in run.scenarios:
        deliver(
            scenario.deliveries,
            sender=sender,
            summary=run.summary,
            concurrency=scenario.concurrency,
            progress=progress,
        )
    return run.summary


def register(run: Run, *, api_url: str, wait: float = 0) -> int:
    """Hand the fake Stripe API every object of the run before any event is delivered, so
    dj-stripe's mirror finds each one at its latest state (as Stripe's API would answer).
    Retries for up to `wait` seconds while the fake starts; returns the objects handed over."""
    items = [obj for scenario in run.scenarios for obj in scenario.objects]
    items += sorted(
        (event for scenario in run.scenarios for event in scenario.events),
        key=lambda event: event["created"],
    )
    fake_api.hand_over(api_url, items, wait=wait)
    return len(items)
