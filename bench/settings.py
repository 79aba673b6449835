"""Benchmark settings: Tollgate's own, plus the baseline endpoints of bench/urls.py."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# The driver times admin pages in-process; the second factor is a browser step, not measured.
# Set here, after loading, because Tollgate's settings refuse it with DEBUG off (as measured);
# this module serves benchmarks only, never a deployment.
ADMIN_REQUIRE_2FA = False
