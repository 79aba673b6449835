"""Stripe's own example objects (stripe_examples.json), the one copy the project reads.

The simulator, the fake Stripe API (fake_api.py), the tests and the bench all start from these
examples and set only the fields they need, so every payload and every API answer keeps
Stripe's real shape. End users have no copy of Stripe's OpenAPI fixtures: the few objects used
are vendored unchanged (see the file's `_origin`).
"""

import copy
import functools
import json
from pathlib import Path
from typing import Any

EXAMPLES_PATH = Path(__file__).with_name("stripe_examples.json")


@functools.cache
def _examples() -> dict[str, dict[str, Any]]:
    with open(EXAMPLES_PATH, encoding="utf-8") as handle:
        resources: dict[str, dict[str, Any]] = json.load(handle)["resources"]
    return resources


def example(kind: str, /, **overrides: Any) -> dict[str, Any]:
    """A deep copy of Stripe's example `kind` object with top-level fields overridden."""
    obj = copy.deepcopy(_examples()[kind])
    obj.update(overrides)
    return obj
