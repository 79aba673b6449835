"""The sealer as a long-running process: seal what has committed, sleep briefly, repeat."""

import signal
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from audit.sealing import audit_seal_pending


class Command(BaseCommand):
    help = (
        "Seal audit rows (chain position, previous hash, hash) in commit order, as the single "
        "leader: a second copy waits its turn harmlessly. Runs until stopped (SIGTERM), or "
        "once with --once."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--interval", type=float, default=0.5, help="seconds to sleep when caught up"
        )
        parser.add_argument("--once", action="store_true", help="seal what waits, then exit")

    def handle(self, *args: Any, interval: float = 0.5, once: bool = False, **options: Any) -> None:
        stopping: list[bool] = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        while True:
            close_old_connections()  # a restarted PostgreSQL costs one round, not the process
            sealed = audit_seal_pending()
            if options["verbosity"] > 1 and sealed:
                self.stdout.write(f"sealed {sealed} rows")
            if once or stopping:
                return
            time.sleep(interval)
