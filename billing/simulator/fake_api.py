"""A fake Stripe API: a real local HTTP server answering for the objects it was given.

One fake serves the demo (`manage.py stripe_fake_api`, started by `make run`), the tests and
the bench. It knows only what it was told: `record_event(event)` keeps the object an event
carries (and every expanded object inside it) at its latest state, by the event's `created`,
as Stripe's API answers the current state even when an old event arrives late. Ids an object
refers to but never sent in full (a subscription's customer, a price's product) get a plain
object built from Stripe's example with that id, so dj-stripe can follow every link. Any other
id gets Stripe's own 404 (`resource_missing`). It binds 127.0.0.1 only: nothing leaves the
machine.

Failure modes switch at run time: `fake.mode = "500"` or `"429"` answers every call with that
error; `fake.refuse()` closes the socket (connection refused) until `fake.serve()` opens it
again on the same port. Another process (the simulator next to `make run`'s fake, the bench)
drives a fake served by `manage.py stripe_fake_api` with `hand_over` (`POST /_fake/events`: a
JSON list of events, and of objects no event carries, such as a customer) and `set_mode`
(`POST /_fake/mode`).

    with FakeStripe() as fake:
        fake.record_event(payload)
        ...
        assert ("GET", "/v1/customers/cus_123") in fake.requests
"""

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from billing.simulator.examples import example

HOST = "127.0.0.1"
CONTROL_PATH = "/_fake/events"
MODE_PATH = "/_fake/mode"
# URL collection -> the `object` name of what it holds.
COLLECTIONS = {
    "customers": "customer",
    "subscriptions": "subscription",
    "subscription_items": "subscription_item",
    "invoices": "invoice",
    "invoiceitems": "invoiceitem",
    "products": "product",
    "prices": "price",
    "plans": "plan",
    "charges": "charge",
    "payment_intents": "payment_intent",
    "payment_methods": "payment_method",
    "setup_intents": "setup_intent",
    "events": "event",
    "refunds": "refund",
    "coupons": "coupon",
    "disputes": "dispute",
    "balance_transactions": "balance_transaction",
    "checkout/sessions": "checkout.session",
}
# Id prefix -> the object a bare reference names, for the links followed by dj-stripe.
REFERENCES = {
    "cus": "customer",
    "sub": "subscription",
    "si": "subscription_item",
    "in": "invoice",
    "prod": "product",
    "price": "price",
    "ch": "charge",
    "py": "charge",
    "pi": "payment_intent",
    "pm": "payment_method",
    "txn": "balance_transaction",
    "cs": "checkout.session",
    "dp": "dispute",
    "du": "dispute",
}
# Fields that hold references worth following (Stripe's examples hold many placeholders).
LINKS = (
    "customer", "subscription", "product", "price", "charge", "payment_intent", "invoice",
    "latest_charge", "balance_transaction", "payment_method", "default_payment_method",
)  # fmt: skip
# What a referenced-only object looks like: Stripe's example with the links its placeholders
# would send elsewhere cleared (an example customer's discount has no coupon, which no real
# customer has; an example charge names an example payment intent, and so on).
PLAIN: dict[str, dict[str, Any]] = {
    "customer": {
        "discount": None,
        "default_source": None,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "metadata": {},
    },
    "product": {"default_price": None, "metadata": {}},
    "payment_intent": {
        "customer": None,
        "latest_charge": None,
        "payment_method": None,
        "invoice": None,
        "metadata": {},
    },
    "payment_method": {"customer": None, "metadata": {}},
    "charge": {
        "customer": None,
        "invoice": None,
        "payment_intent": None,
        "payment_method": None,
        "balance_transaction": None,
        "source": None,
        "metadata": {},
    },
}
ERRORS = {
    "500": (500, "api_error", "An unknown error occurred (fake Stripe outage)."),
    "429": (429, "rate_limit_error", "Too many requests (fake Stripe rate limit)."),
}


def not_found(kind: str, object_id: str) -> tuple[int, dict[str, Any]]:
    """Stripe's own answer for an id it does not know."""
    return 404, {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such {kind.replace('_', ' ').replace('.', ' ')}: '{object_id}'",
            "param": "id",
        }
    }


class FakeStripe:
    def __init__(self, *, port: int = 0):
        self.mode = "ok"
        self.requests: list[tuple[str, str]] = []
        self.port = port
        self._objects: dict[str, dict[str, Any]] = {}
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # --- What the fake knows ------------------------------------------------------------

    def record_event(self, event: dict[str, Any]) -> None:
        """Know the objects an event carries, at their state as of the event's `created`."""
        with self._lock:
            self._put(event, version=event.get("created") or 0)
            self._put(event["data"]["object"], version=event.get("created") or 0)

    def put(self, obj: dict[str, Any], *, version: int = 0) -> None:
        """Know one object (and the objects expanded inside it) as it is at `version`."""
        with self._lock:
            self._put(obj, version=version)

    def get(self, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(object_id)

    def _put(self, obj: dict[str, Any], *, version: int) -> None:
        for found in _expanded(obj):
            object_id = found["id"]
            if self._versions.get(object_id, -1) <= version:
                self._objects[object_id] = found
                self._versions[object_id] = version
        for found in _expanded(obj):
            for field in LINKS:
                self._reference(found.get(field))

    def _reference(self, value: object) -> None:
        if not isinstance(value, str) or value in self._objects:
            return
        kind = REFERENCES.get(value.split("_", 1)[0])
        if kind is None:
            return
        obj = example(kind, id=value, livemode=False, **PLAIN.get(kind, {}))
        self._objects[value] = obj
        self._versions[value] = -1  # any object sent in full replaces it

    # --- Answers -----------------------------------------------------------------------

    def answer(self, method: str, path: str, query: str = "") -> tuple[int, dict[str, Any]]:
        self.requests.append((method, path))
        if self.mode in ERRORS:
            status, kind, message = ERRORS[self.mode]
            return status, {"error": {"type": kind, "message": message}}
        parts = [p for p in path.split("/") if p][1:]  # drop "v1"
        if parts[:1] == ["checkout"]:
            parts = ["checkout/" + "/".join(parts[1:2]), *parts[2:]]
        if parts == ["account"]:  # the key's own account, which dj-stripe asks for first
            return 200, example("account", id="acct_fake")
        if not parts or parts[0] not in COLLECTIONS:
            return 404, {
                "error": {"type": "invalid_request_error", "message": f"Unrecognized {path}"}
            }
        kind = COLLECTIONS[parts[0]]
        if len(parts) == 1:
            return 200, self._list(kind, dict(parse_qsl(query)), path)
        with self._lock:
            obj = self._objects.get(parts[1])
        if obj is None or obj.get("object") != kind:
            return not_found(kind, parts[1])
        if len(parts) == 2:
            return 200, obj
        # A sub-collection (an invoice's lines, a customer's sources): what the object holds.
        nested = obj.get(parts[2])
        if isinstance(nested, dict) and nested.get("object") == "list":
            return 200, nested
        return 200, {"object": "list", "data": [], "has_more": False, "url": path}

    def _list(self, kind: str, filters: dict[str, str], path: str) -> dict[str, Any]:
        """The objects of one kind whose top-level fields match the query (?customer=...)."""
        filters = {k: v for k, v in filters.items() if "[" not in k and k != "limit"}
        with self._lock:
            data = [
                obj
                for obj in self._objects.values()
                if obj.get("object") == kind
                and all(str(obj.get(name)) == value for name, value in filters.items())
            ]
        return {"object": "list", "data": data, "has_more": False, "url": path}

    # --- The server ----------------------------------------------------------------------

    def serve(self) -> "FakeStripe":
        self._server = ThreadingHTTPServer((HOST, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the `stripe_fake_api` command)."""
        self._server = ThreadingHTTPServer((HOST, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def refuse(self) -> None:
        """Close the listening socket: every call now fails with connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeStripe":
        return self.serve()

    def __exit__(self, *exc: object) -> None:
        self.refuse()


def _expanded(obj: object) -> list[dict[str, Any]]:
    """`obj` and every Stripe object expanded inside it (those with an id and an `object`)."""
    found: list[dict[str, Any]] = []
    stack: list[object] = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("id"), str) and value.get("object") not in (None, "list"):
                found.append(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the stripe SDK's session expects

        def _respond(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            if url.path == CONTROL_PATH and self.command == "POST":
                status, answer = self._record(body)
            elif url.path == MODE_PATH and self.command == "POST":
                status, answer = self._mode(body)
            else:
                status, answer = fake.answer(self.command, url.path, url.query)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(payload)

        def _record(self, body: bytes) -> tuple[int, dict[str, Any]]:
            try:
                items = json.loads(body)
                for item in items:
                    if item["object"] == "event":
                        fake.record_event(item)
                    else:
                        fake.put(item)
            except (ValueError, TypeError, KeyError, AttributeError):
                return 400, {"error": {"type": "invalid_request_error", "message": "Bad events"}}
            return 200, {"recorded": len(items)}

        def _mode(self, body: bytes) -> tuple[int, dict[str, Any]]:
            mode = body.decode(errors="replace").strip()
            if mode not in {"ok", *ERRORS}:
                return 400, {"error": {"type": "invalid_request_error", "message": "Bad mode"}}
            fake.mode = mode
            return 200, {"mode": mode}

        do_GET = do_POST = do_DELETE = _respond

        # Quiet: the demo's terminal shows the simulator.
        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _post(url: str, body: bytes, *, wait: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - the fake's own http:// URL
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    deadline = time.monotonic() + wait
    while True:
        try:
            with opener.open(request, timeout=30):
                return
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.25)


def hand_over(api_url: str, items: list[dict[str, Any]], *, wait: float = 0) -> None:
    """Hand events (and objects no event carries) to a fake served by another process,
    retrying for up to `wait` seconds while it starts."""
    _post(api_url.rstrip("/") + CONTROL_PATH, json.dumps(items).encode(), wait=wait)


def set_mode(api_url: str, mode: str) -> None:
    """Switch a fake served by another process to "ok", "500" or "429"."""
    _post(api_url.rstrip("/") + MODE_PATH, mode.encode(), wait=0)
