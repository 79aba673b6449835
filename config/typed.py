"""Text typed by people (admin search boxes, API fields) made safe to put into a query.

NUL needs no guard here: Django's and DRF's form fields refuse it before it reaches a query."""

BIGINT_MAX = 2**63 - 1


def typed_id(text: str) -> int | None:
    """The database id `text` spells in ASCII digits, or None when it spells none.

    str.isdigit() accepts "²", which int() refuses, and int() accepts "٣" and numbers beyond
    PostgreSQL's bigint: each of those reached the database or int() and answered 500.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= BIGINT_MAX else None
