"""Sign and post events the way Stripe delivers them, and tally what the server answered.

Each attempt is signed afresh (a retry carries a new timestamp, as Stripe's do) with the stripe
SDK's own helper. Non-2xx answers and connection errors are retried a bounded number of times
with a doubling backoff; what still fails is "lost". Proxies from the environment are ignored:
the simulator talks to the one URL it is given and nothing else.
"""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import stripe

from config.problems import PROBLEM_BASE

USER_AGENT = "Tollgate-Stripe-Simulator/1.0 (+offline; like Stripe/1.0)"
NO_ANSWER = "no answer"


@dataclass(frozen=True)
class Answer:
    """The final answer to one delivery (after retries)."""

    event_id: str
    event_type: str
    status: int | None  # None: no HTTP answer at all (connection refused, timeout)
    problem: str = ""  # the problem type's slug, for problem+json answers
    outcome: str = ""  # the webhook's "accepted" / "duplicate", or the error's name
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Summary:
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    @property
    def lost(self) -> list[Answer]:
        return [answer for answer in self.answers if not answer.ok]

    def by_status(self) -> Counter[str]:
        return Counter(str(a.status) if a.status else NO_ANSWER for a in self.answers)

    def by_outcome(self) -> Counter[str]:
        return Counter(a.outcome for a in self.answers if a.ok)

    def by_problem(self) -> Counter[str]:
        return Counter(a.problem for a in self.answers if a.problem)

    def by_error(self) -> Counter[str]:
        """Deliveries that got no HTTP answer, by the connection error's name."""
        return Counter(a.outcome for a in self.answers if a.status is None)

    def table(self) -> str:
        """The summary printed at the end: counts by HTTP status, outcome and problem type."""
        retried = sum(1 for a in self.answers if a.attempts > 1)
        rows = [("deliveries", len(self.answers)), ("retried", retried)]
        rows += [(f"HTTP {key}", n) for key, n in sorted(self.by_status().items())]
        rows += [(f"  {key}", n) for key, n in sorted(self.by_outcome().items())]
        rows += [(f"problem {key}", n) for key, n in sorted(self.by_problem().items())]
        rows += [(f"  {key}", n) for key, n in sorted(self.by_error().items())]
        rows.append(("lost", len(self.lost)))
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {count:>6}" for label, count in rows)


class Sender:
    """Posts signed events to one webhook URL."""

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        retries: int = 3,
        backoff: float = 0.25,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            raise ValueError("The webhook URL must be http(s).")
        self.url, self._secret = url, secret
        self.retries, self.backoff, self.timeout, self._sleep = retries, backoff, timeout, sleep
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _attempt(self, body: str) -> tuple[int | None, str, bytes]:
        header = stripe.WebhookSignature.generate_signature_header(body, self._secret)
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": header,
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get_content_type(), error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            return None, "", type(reason).__name__.encode()

    def send(self, event: dict[str, Any]) -> Answer:
        body = json.dumps(event)
        attempts = 0
        while True:
            attempts += 1
            status, content_type, raw = self._attempt(body)
            if (status is not None and 200 <= status < 300) or attempts > self.retries:
                break
            self._sleep(self.backoff * 2 ** (attempts - 1))
        return _answer(event, status, content_type, raw, attempts)


def _answer(
    event: dict[str, Any], status: int | None, content_type: str, raw: bytes, attempts: int
) -> Answer:
    problem, outcome = "", ""
    if status is None:
        outcome = raw.decode()
    else:
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if content_type == "application/problem+json":
            problem = str(data.get("type", "")).removeprefix(PROBLEM_BASE) or "untyped"
        outcome = str(data.get("status") or "ok") if 200 <= status < 300 else ""
    return Answer(
        event_id=event["id"],
        event_type=event["type"],
        status=status,
        problem=problem,
        outcome=outcome,
        attempts=attempts,
    )


def deliver(
    deliveries: list[dict[str, Any]],
    *,
    sender: Sender,
    summary: Summary,
    concurrency: int = 1,
    progress: Callable[[int], object] = lambda n: None,
) -> None:
    """Send every delivery (in order, or `concurrency` at a time) into `summary`."""

    def one(event: dict[str, Any]) -> None:
        summary.add(sender.send(event))
        progress(1)

    if concurrency <= 1:
        for event in deliveries:
            one(event)
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, deliveries))
