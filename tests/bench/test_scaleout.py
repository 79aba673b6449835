"""The capacity model of docs/deploy.md quotes the bench's last scaleout figures (issue 16)."""

from pathlib import Path

from bench.report import Report
from bench.scaleout import capacity, write_capacity

ROOT = Path(__file__).resolve().parents[2]


def scaleout_report(**figures) -> Report:
    report = Report(command="make bench")
    report.section("scaleout", "Scale-out", {**figures, **capacity(figures)})
    return report


def test_the_capacity_table_is_written_between_the_markers_and_replaced_by_the_next_run(
    tmp_path,
):
    deploy = tmp_path / "deploy.md"
    deploy.write_text(
        "before\n<!-- capacity:begin (written by make bench) -->\nold\n"
        "<!-- capacity:end -->\nafter\n"
    )
    first = scaleout_report(w1_acks_cpu_ms_per_event_gunicorn=2.0, w1_end_to_end_per_s=80.0)
    assert write_capacity(first, deploy)
    text = deploy.read_text()
    assert text.startswith("before\n<!-- capacity:begin (written by make bench) -->\n")
    assert text.endswith("<!-- capacity:end -->\nafter\n")
    assert "old" not in text
    assert "| events/s per web core (acknowledging) | 500.0 |" in text
    assert "| processed end to end with 1 worker process (events/s) | 80.0 |" in text

    second = scaleout_report(w1_acks_cpu_ms_per_event_gunicorn=4.0)
    assert write_capacity(second, deploy)
    text = deploy.read_text()
    assert "| events/s per web core (acknowledging) | 250.0 |" in text
    assert "500.0" not in text
    assert text.count("capacity:begin") == 1


def test_the_real_deploy_guide_has_the_markers_and_no_run_no_rewrite(tmp_path):
    assert "<!-- capacity:begin" in (ROOT / "docs" / "deploy.md").read_text()
    deploy = tmp_path / "deploy.md"
    deploy.write_text("<!-- capacity:begin -->\nkept\n<!-- capacity:end -->\n")
    assert not write_capacity(Report(command="make bench"), deploy)
    assert "kept" in deploy.read_text()
