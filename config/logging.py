"""Structured JSON logging: one JSON object per line, with the request id on every line.

structlog renders both our own loggers and the standard library's (Django, Celery, stripe),
and a redaction step masks secrets, webhook signatures and card data before anything is
written, whoever logged it.
"""

import logging.config
import re
from typing import cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Keys whose values are never written to a log, at any nesting depth.
SENSITIVE_KEY = re.compile(
    r"(secret|password|passwd|token|signature|authorization|cookie|api_key|card|cvc|"
    r"number|exp_month|exp_year|iban|account_number|sessionid|csrf)",
    re.IGNORECASE,
)
# Values that look like Stripe keys (secret, restricted, publishable; live and test), webhook
# secrets, ephemeral keys, client secrets (pi_..._secret_..., seti_, cs_, src_client_secret_,
# and the id-less cuss_secret_..., accs_secret__...), bearer tokens, webhook signatures or card
# numbers, wherever they appear in a text. The one definition of "shaped like a secret": logs,
# stored request data and audit rows (audit/meta.py) all use it.
SENSITIVE_VALUE = re.compile(
    r"(whsec_[A-Za-z0-9_]+|\b(?:sk|rk|pk|ek)_(?:live|test)_[A-Za-z0-9_]+|"
    r"\b[a-z]{2,5}_(?:[A-Za-z0-9_]*_)?secret_[A-Za-z0-9_]+|"
    r"\b(?i:bearer)\s+[A-Za-z0-9\-._~+/]+=*|"
    r"t=\d+,v1=[0-9a-f]+[^\s\"']*|\b(?:\d[ -]?){13,19}\b)"
)
REDACTED = "[redacted]"


def looks_secret(text: str) -> bool:
    """Whether the text holds anything redact_text would mask."""
    return SENSITIVE_VALUE.search(text) is not None


def redact_text(text: str) -> str:
    """The text with every secret-shaped value replaced: the one masking function for logs and
    for anything stored from a request (delivery headers, error texts)."""
    return SENSITIVE_VALUE.sub(REDACTED, text)


def _redact(value: object, depth: int = 0) -> object:
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {
            key: REDACTED if SENSITIVE_KEY.search(str(key)) else _redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item, depth + 1) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask sensitive keys and secret-looking values."""
    # _redact returns a dict for a dict: the same keys, masked values.
    return cast(EventDict, _redact(event_dict))


SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
]


def configure(settings_dict: dict[str, str]) -> None:
    """Django's LOGGING_CONFIG hook: wire structlog and the standard library together."""
    level = settings_dict.get("level", "INFO")
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "foreign_pre_chain": SHARED_PROCESSORS,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        redact_secrets,
                        structlog.processors.JSONRenderer(),
                    ],
                },
            },
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
            "root": {"handlers": ["console"], "level": level},
            "loggers": {
                # Django's default handlers (plain-text console, admin e-mails) are replaced
                # by the JSON root handler.
                "django": {"handlers": [], "level": level, "propagate": True},
                # Access logs come from gunicorn; runserver's duplicate lines are noise.
                "django.server": {"level": "WARNING"},
                "stripe": {"level": "WARNING"},
            },
        }
    )
