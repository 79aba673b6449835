"""The bench report prints a ratio only when both sides answered (issue 16: an honest baseline)."""

from bench.report import Report


def report_with(stock_ok: int) -> Report:
    report = Report(command="make bench")
    report.section("ingest", "ours", {"sent": 100, "ok": 100, "error_rate": 0.0,
                                      "rate_per_s": 200.0, "end_to_end_per_s": 60.0})  # fmt: skip
    error_rate = round(1 - stock_ok / 100, 4)
    report.section("djstripe", "stock", {"sent": 100, "ok": stock_ok, "error_rate": error_rate,
                                         "rate_per_s": 50.0})  # fmt: skip
    return report


def test_a_ratio_against_a_baseline_failing_one_percent_or_more_is_not_printed(tmp_path):
    out = tmp_path / "benchmarks.md"
    report_with(stock_ok=50).write(out, machine="test")

    text = out.read_text()
    assert "| acks/s vs stock dj-stripe | no ratio: `djstripe` failed 50.0% of its requests |" in (
        text
    )
    assert "4.0x" not in text


def test_both_sides_answering_get_their_ratio(tmp_path):
    out = tmp_path / "benchmarks.md"
    report_with(stock_ok=100).write(out, machine="test")

    text = out.read_text()
    assert "| acks/s vs stock dj-stripe | 4.0x |" in text
    assert "| processed end to end/s vs stock dj-stripe | 1.2x |" in text


def test_runs_recorded_before_error_rates_existed_are_judged_from_sent_and_ok():
    report = report_with(stock_ok=99)
    del report.sections["djstripe"][1]["error_rate"]
    assert report.refusal(("djstripe", "rate_per_s")) == (
        "no ratio: `djstripe` failed 1.0% of its requests"
    )
