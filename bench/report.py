"""Collect benchmark figures and write them to docs/benchmarks.md as tables, with ratios."""

import datetime
import json
from pathlib import Path

# (figure, baseline figure, what the ratio means)
RATIOS = [
    (("ingest", "rate_per_s"), ("djstripe", "rate_per_s"), "acks/s vs stock dj-stripe"),
    (("ingest", "rate_per_s"), ("one_insert", "rate_per_s"), "acks/s vs one-INSERT view"),
    (("ingest", "rate_per_s"), ("pgbench", "commits_per_s_32_clients"),
     "acknowledgements/s vs PostgreSQL commits/s (32 clients)"),
    (("ingest", "end_to_end_per_s"), ("djstripe", "rate_per_s"),
     "processed end to end/s vs stock dj-stripe"),
    (("ingest_web_first", "rate_per_s"), ("one_insert", "rate_per_s"),
     "acks/s, worker processing at a lower CPU priority (BENCH_WORKER_NICE), vs one-INSERT view"),
    (("ingest_web_first", "end_to_end_per_s"), ("djstripe", "rate_per_s"),
     "processed end to end/s, worker at a lower CPU priority, vs stock dj-stripe"),
    (("tiers", "acks_rate_per_s"), ("one_insert", "rate_per_s"),
     "acks/s with the worker stopped vs one-INSERT view (web tier alone)"),
    (("tiers", "acks_rate_per_s"), ("djstripe", "rate_per_s"),
     "acks/s with the worker stopped vs stock dj-stripe"),
    (("mirror", "mirror_on_end_to_end_per_s"), ("djstripe", "rate_per_s"),
     "processed end to end/s, mirror on, vs stock dj-stripe (which mirrors synchronously)"),
]  # fmt: skip


# A ratio is printed only when both sides answered at least this share of their requests 2xx;
# otherwise the report says which side failed and how often, instead of a meaningless ratio.
MAX_ERROR_RATE = 0.01

RATIO = "ratio"  # a target on the ratio of two figures: ((section, figure), (section, figure))

# (target, section, figure, comparison, threshold) from the targets on a 2-core machine.
TARGETS = [
    ("acknowledgement p99 under 50 ms at 200 events/s offered", "ingest_offered", "p99_ms",
     "<", 50),
    # Issue 16: while the worker processes what the web acknowledges.
    ("acknowledgement p99 under 50 ms at 100 events/s offered (issue 16)", "ingest_offered_100",
     "p99_ms", "<", 50),
    ("acknowledgement p99 under 100 ms at 150 events/s offered (issue 16)",
     "ingest_offered_150", "p99_ms", "<", 100),
    ("at least 500 events/s acknowledged (worker processing at the same time)", "ingest",
     "rate_per_s", ">=", 500),
    ("at least 500 events/s acknowledged (web tier alone, worker stopped)", "tiers",
     "acks_rate_per_s", ">=", 500),
    # Issue 16: 0.4x with the worker busy (it shares the cores), 0.6x with it stopped.
    ("acknowledgement path at 40% or more of the one-INSERT view (worker processing)",
     RATIO, (("ingest", "rate_per_s"), ("one_insert", "rate_per_s")), ">=", 0.4),
    ("acknowledgement path at 60% or more of the one-INSERT view (web tier alone)",
     RATIO, (("tiers", "acks_rate_per_s"), ("one_insert", "rate_per_s")), ">=", 0.6),
    ("at least 150 events/s processed end to end (issue 16; 200 before it)", "ingest",
     "end_to_end_per_s", ">=", 150),
    ("end to end at least 3x the stock dj-stripe view in the same run (issue 16)", RATIO,
     (("ingest", "end_to_end_per_s"), ("djstripe", "rate_per_s")), ">=", 3),
    ("end to end at least 1.8x from 1 to 2 worker processes (web tier idle)", "scaleout",
     "end_to_end_w2_vs_w1", ">=", 1.8),
    ("at most 4 SQL statements per new event on the acknowledgement path", "sql",
     "statements_per_event_without_begin_commit", "<=", 4),
    ("has_feature at least 100x the naive baseline with a warm cache", "has_feature",
     "warm_vs_naive", ">=", 100),
    ("audit_verify at least 100,000 rows/s", "audit_scale", "audit_verify_rows_per_s", ">=",
     100_000),
    ("duplicate storm: nothing applied twice", "dupstorm", "applied_twice", "<=", 0),
    ("a known duplicate rejected in under 5 ms median (Redis up)", "dupstorm",
     "known_duplicate_p50_ms", "<", 5),
    ("admin first page under 200 ms at 5,000,000 rows", "audit_scale",
     "5M_rows_first_page_tollgate_ms", "<", 200),
    ("admin first page at least 5x faster than a plain ModelAdmin at 5,000,000 rows",
     "audit_scale", "5M_rows_first_page_speedup", ">=", 5),
    # The same two at 10M rows, when audit_scale ran with --audit-rows 10000000.
    ("admin first page under 200 ms at 10,000,000 rows", "audit_scale",
     "10M_rows_first_page_tollgate_ms", "<", 200),
    ("admin first page at least 5x faster than a plain ModelAdmin at 10,000,000 rows",
     "audit_scale", "10M_rows_first_page_speedup", ">=", 5),
    # Issue 14: the audit trail off the hot path.
    ("audit appends at least 3,000 rows/s with 16 concurrent writers", "audit_inserts",
     "inserts_per_s_16_writers", ">=", 3000),
    ("sealing at least 20,000 rows/s", "audit_inserts", "seal_rows_per_s_after_16_writers",
     ">=", 20_000),
    ("seal lag p99 under 2 s while the ingest benchmark runs", "ingest", "seal_lag_p99_s", "<",
     2),
    ("inclusion proof under 10 ms at 10M rows (bench.run --audit-rows 10000000)",
     "audit_scale", "10M_rows_inclusion_proof_median_ms", "<", 10),
    ("evidence pack (evidence_rows, 1M at scale 1) verified offline in under 60 s",
     "audit_scale", "evidence_verify_offline_s", "<", 60),
    *[(f"webhook apply and staff revoke of one user in parallel: no {what}", "revoke_apply",
       figure, "<=", 0)
      for figure, what in (("deadlocks", "deadlock"), ("would_be_503", "503"),
                           ("errors", "error"),
                           ("inconsistent_final_states", "revoke that did not stick"))],
    *[(f"fault drill, {fault}: {what}", key, figure, "<=", 0)
      for key, fault in (("drill_postgres", "PostgreSQL restarted"),
                         ("drill_redis", "Redis stopped"),
                         ("drill_worker", "worker SIGKILLed"),
                         ("drill_relay", "relay SIGKILLed mid-batch"),
                         ("drill_stripe", "Stripe API 500/429"))
      for figure, what in (("lost", "events lost"), ("applied_twice", "events applied twice"))],
]  # fmt: skip


class Report:
    def __init__(self, command: str):
        self.command = command
        self.date = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
        # key -> [title, figures, command, date]: a partial run (--only) keeps the other
        # sections of the previous run, each with the command and date that produced it.
        self.sections: dict[str, list] = {}

    def section(self, key: str, title: str, figures: dict) -> None:
        self.sections[key] = [title, figures, self.command, self.date]
        print(json.dumps({key: figures}))

    def merge_previous(self, path: Path) -> None:
        data = path.with_suffix(".json")
        if data.exists():
            previous = json.loads(data.read_text())
            self.sections = {**previous, **self.sections}

    def figure(self, key: str, name: str):
        section = self.sections.get(key)
        return None if section is None else section[1].get(name)

    def error_rate(self, key: str, name: str) -> float | None:
        """The error rate behind a figure: its section's own, or its phase's (`acks_...`,
        `mirror_on_...`); None when the section does not record one."""
        prefix = next((p for p in ("acks_", "mirror_on_", "mirror_off_") if name.startswith(p)), "")
        rate = self.figure(key, f"{prefix}error_rate")
        if rate is None and self.figure(key, "sent"):  # runs from before error_rate existed
            return round(1 - self.figure(key, "ok") / self.figure(key, "sent"), 4)
        return rate

    def refusal(self, *figures: tuple[str, str]) -> str | None:
        """Why no ratio of these figures: a side whose error rate is MAX_ERROR_RATE or more."""
        for key, name in figures:
            rate = self.error_rate(key, name)
            if rate is not None and rate >= MAX_ERROR_RATE:
                return f"no ratio: `{key}` failed {rate:.1%} of its requests"
        return None

    def ratio(self, figure: tuple[str, str], base: tuple[str, str]) -> float | None:
        value, base_value = self.figure(*figure), self.figure(*base)
        if self.refusal(figure, base):
            return None
        return round(value / base_value, 2) if value and base_value else None

    def ratios(self) -> list[tuple[str, str]]:
        rows = []
        for figure, base, meaning in RATIOS:
            value, base_value = self.figure(*figure), self.figure(*base)
            if not (value and base_value):
                continue
            refusal = self.refusal(figure, base)
            rows.append((meaning, refusal or f"{round(value / base_value, 2)}x"))
        return rows

    def write(self, path: Path, *, machine: str) -> None:
        lines = [
            "# Benchmarks",
            "",
            f"- Machine: {machine}",
            "- Each section names the command that produced it and when; `make bench` runs"
            " them all.",
            "",
        ]
        targets = []
        for meaning, key, name, op, threshold in TARGETS:
            value = self.ratio(*name) if key == RATIO else self.figure(key, name)
            if value is None:
                continue
            met = value < threshold if op == "<" else value >= threshold if op == ">=" else (
                value <= threshold
            )  # fmt: skip
            targets.append(f"| {meaning} | {value} | {'met' if met else 'MISSED'} |")
        if targets:
            lines += ["## Targets", "", "| target | measured | |", "| --- | --- | --- |"]
            lines += [*targets, ""]
        notes = Path(__file__).with_name("notes.md")
        if notes.exists():
            lines += [notes.read_text().strip(), ""]
        ratios = self.ratios()
        if ratios:
            lines += ["## Ratios", "", "| ratio | value |", "| --- | --- |"]
            lines += [f"| {meaning} | {value} |" for meaning, value in ratios]
            lines.append("")
        for key, (title, figures, command, date) in self.sections.items():
            lines += [f"## {title}", "", f"Scenario `{key}`: `{command}`, {date}.", "",
                      "| figure | value |", "| --- | --- |"]  # fmt: skip
            lines += [f"| {_markdown(name)} | {value} |" for name, value in figures.items()]
            lines.append("")
        path.write_text("\n".join(lines))
        path.with_suffix(".json").write_text(json.dumps(self.sections, indent=1) + "\n")


def _markdown(text: str) -> str:
    """Profile frames hold `<locals>` and `<lambda>`: Markdown would read them as HTML tags."""
    return text.replace("<", "&lt;").replace(">", "&gt;")
