"""A fake Stripe API: a real local HTTP server answering with Stripe's example objects.

Tests point the stripe SDK at it (`stripe.api_base = fake.url`, or the STRIPE_API_HOST setting
for a server process) so only Stripe's network boundary is faked. Failure modes switch at run
time: `fake.mode = "500"` or `"429"` answers every call with that error; `fake.refuse()` closes
the socket (connection refused) until `fake.serve()` opens it again on the same port.

    with FakeStripe() as fake:
        fake.objects["cus_123"] = {"email": "a@example.com"}  # overrides for one object
        ...
        assert ("GET", "/v1/customers/cus_123") in fake.requests
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.stripe_fixtures import resource

# URL collection -> Stripe example object name in fixtures3.json.
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
}
# Stripe's examples are skeletons: a customer's example discount has no coupon, which no real
# customer has. The fake answers like an account with plain objects.
REALISTIC = {"customer": {"discount": None}}
ERRORS = {
    "500": (500, "api_error", "An unknown error occurred (fake Stripe outage)."),
    "429": (429, "rate_limit_error", "Too many requests (fake Stripe rate limit)."),
}


class FakeStripe:
    def __init__(self):
        self.mode = "ok"
        self.requests: list[tuple[str, str]] = []
        self.objects: dict[str, dict] = {}
        self.port = 0
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> "FakeStripe":
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def refuse(self) -> None:
        """Close the listening socket: every call now fails with connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeStripe":
        return self.serve()

    def __exit__(self, *exc) -> None:
        self.refuse()

    def answer(self, method: str, path: str) -> tuple[int, dict]:
        self.requests.append((method, path))
        if self.mode in ERRORS:
            status, kind, message = ERRORS[self.mode]
            return status, {"error": {"type": kind, "message": message}}
        parts = [p for p in path.split("/") if p][1:]  # drop "v1"
        if len(parts) == 2 and parts[0] == "checkout":
            parts = ["checkout/" + parts[1]]
        if parts == ["account"]:  # the key's own account, which dj-stripe asks for first
            return 200, {**resource("account", id="acct_fake"), **self.objects.get("account", {})}
        if len(parts) == 1 or len(parts) == 3:
            # A list (the collection, or a sub-collection such as a customer's sources).
            return 200, {"object": "list", "data": [], "has_more": False, "url": path}
        if len(parts) == 2 and parts[0] in COLLECTIONS:
            name = COLLECTIONS[parts[0]]
            obj = resource(name, id=parts[1], **REALISTIC.get(name, {}))
            obj.update(self.objects.get(parts[1], {}))
            return 200, obj
        return 404, {"error": {"type": "invalid_request_error", "message": f"No route {path}"}}


def _handler_for(fake: FakeStripe):
    class Handler(BaseHTTPRequestHandler):
        def _respond(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body = fake.answer(self.command, urlsplit(self.path).path)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _respond

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler
