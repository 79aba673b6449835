"""CPU accounting of the bench (bench/profile.py): processes that end between two readings are
counted, and a tier's figure is never negative (issue 16: PostgreSQL came out at -0.76 ms)."""

import os
import sys
from pathlib import Path

import pytest

from bench import procs, profile

# Spends `seconds` of CPU, then exits.
BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}: pass\n"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads Linux /proc")
def test_a_process_tree_that_ended_between_two_readings_is_counted(tmp_path):
    # A child that sleeps past the first reading, then burns CPU in a grandchild it reaps
    # (as gunicorn reaps a recycled worker) and in itself, and exits.
    script = (
        "import subprocess, sys, time\n"
        "time.sleep(0.5)\n"
        f"subprocess.run([sys.executable, '-c', {BUSY.format(seconds=0.3)!r}], check=True)\n"
        + BUSY.format(seconds=0.2)
    )
    child = procs.Proc("busy", [sys.executable, "-c", script], dict(os.environ), tmp_path).start()
    before = profile.cpu_seconds_by_role()
    assert child.wait(timeout=60)
    after = profile.cpu_seconds_by_role()

    spent = profile.cpu_ms_per_event(before, after, 1)["cpu_ms_per_event_busy"]
    assert spent >= 450  # 0.3 s in the ended grandchild and 0.2 s in the ended child


def test_a_tree_gone_without_its_figures_adds_nothing_and_a_new_one_counts_from_zero():
    # A Redis server restarted by a drill: the old pid vanished, a new one appeared.
    before = {("redis", 100): 5.0, ("postgres", 7): 2.0}
    after = {("redis", 200): 0.25, ("postgres", 7): 2.5}

    figures = profile.cpu_ms_per_event(before, after, 10)

    assert figures == {"cpu_ms_per_event_postgres": 50.0, "cpu_ms_per_event_redis": 25.0}
