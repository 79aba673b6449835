"""Who is acting and under which request, carried from the web request into Celery tasks.

Audit rows need the acting user and the request id even when the work runs later in a Celery
worker. The values live in context variables (bound into structlog too, so every log line has
them) and travel with each task in its message headers (see config/celery.py).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import asdict, dataclass
from typing import Any

import structlog


@dataclass(frozen=True)
class Actor:
    """The party on whose behalf work is done. user_id is set for kind == "user"."""

    kind: str = "system"  # "user", "system" or "stripe"
    user_id: int | None = None


SYSTEM = Actor()
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_actor: ContextVar[Actor] = ContextVar("actor", default=SYSTEM)
_client: ContextVar[tuple[str | None, str]] = ContextVar("client", default=(None, ""))
_role_seeding: ContextVar[bool] = ContextVar("role_seeding", default=False)


def current_request_id() -> str | None:
    return _request_id.get()


def current_actor() -> Actor:
    return _actor.get()


def current_client() -> tuple[str | None, str]:
    """(remote IP, user agent) of the web request being served, or (None, "")."""
    return _client.get()


def start_request(request_id: str, *, remote_ip: str | None = None, user_agent: str = "") -> None:
    """Begin a web request: forget everything bound by the previous one on this thread."""
    structlog.contextvars.clear_contextvars()
    _actor.set(SYSTEM)
    _client.set((remote_ip, user_agent[:512]))
    bind(request_id=request_id, actor=SYSTEM)
    # Every log line of the request names the client (config/client.py), never the proxy.
    structlog.contextvars.bind_contextvars(client_ip=remote_ip)


def bind(*, request_id: str | None = None, actor: Actor | None = None) -> list[Token[Any]]:
    """Set the context; returns tokens for reset(). Also binds structlog's context."""
    # Tokens of different variables (Token[str | None], Token[Actor]): each resets its own.
    tokens: list[Token[Any]] = []
    if request_id is not None:
        tokens.append(_request_id.set(request_id))
        structlog.contextvars.bind_contextvars(request_id=request_id)
    if actor is not None:
        tokens.append(_actor.set(actor))
        structlog.contextvars.bind_contextvars(actor=actor.kind, actor_user_id=actor.user_id)
    return tokens


def reset(tokens: list[Token[Any]]) -> None:
    for token in reversed(tokens):
        token.var.reset(token)
    structlog.contextvars.clear_contextvars()
    if _request_id.get() is not None:
        structlog.contextvars.bind_contextvars(request_id=_request_id.get())
    if _client.get()[0] is not None:
        structlog.contextvars.bind_contextvars(client_ip=_client.get()[0])


@contextmanager
def acting_as(actor: Actor, *, request_id: str | None = None) -> Iterator[None]:
    """Run a block on behalf of an actor (management commands, tasks, tests)."""
    tokens = bind(request_id=request_id, actor=actor)
    try:
        yield
    finally:
        reset(tokens)


def to_headers() -> dict[str, object]:
    """Serialise the context for a Celery message."""
    return {"tollgate_request_id": current_request_id(), "tollgate_actor": asdict(current_actor())}


def from_headers(headers: dict[str, Any]) -> tuple[str | None, Actor]:
    actor_data = headers.get("tollgate_actor") or {}
    actor = Actor(kind=actor_data.get("kind", "system"), user_id=actor_data.get("user_id"))
    return headers.get("tollgate_request_id"), actor


@contextmanager
def role_seeding() -> Iterator[None]:
    """migrate's seeding of the role groups (post_migrate): it only restores the documented
    permission sets, on every migrate and every test flush, so audit does not record it."""
    token = _role_seeding.set(True)
    try:
        yield
    finally:
        _role_seeding.reset(token)


def in_role_seeding() -> bool:
    return _role_seeding.get()
