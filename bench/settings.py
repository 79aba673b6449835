"""Benchmark settings: Tollgate's own, plus the baseline endpoints of bench/urls.py."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
