"""The vendored examples are Stripe's own: every object the simulator, the fake Stripe API and
the tests build from (billing/simulator/stripe_examples.json) is identical to the example of the
same name in Stripe's fixtures (`../shared/stripe/fixtures3.json` beside the checkout, or
TOLLGATE_STRIPE_FIXTURES)."""

import json
import os
from pathlib import Path

import pytest

from billing.simulator.examples import EXAMPLES_PATH

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(
    os.environ.get("TOLLGATE_STRIPE_FIXTURES", ROOT.parent / "shared" / "stripe" / "fixtures3.json")
)


def test_every_vendored_example_is_stripes_own():
    if not FIXTURES.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Stripe's fixtures are missing at {FIXTURES}")
        pytest.skip(f"Stripe's fixtures are not at {FIXTURES}")
    stripes = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    vendored = json.loads(EXAMPLES_PATH.read_text(encoding="utf-8"))["resources"]
    assert vendored, "no examples vendored"
    differing = sorted(name for name, obj in vendored.items() if stripes.get(name) != obj)
    assert differing == []
