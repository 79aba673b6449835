"""The evidence's PDF page: any review renders, however long its cells."""

from audit.export import csv_cell
from audit.review_evidence import ACCOUNT_COLUMNS
from audit.review_pdf import review_pdf


def test_a_review_with_huge_cells_still_renders_and_renders_the_same_bytes():
    # A finding links up to AUDIT_REVIEW_MAX_LINKED rows; a superuser-like account holds
    # hundreds of permissions: neither may be taller than a page.
    sequences = " ".join(str(n) for n in range(1_000_000, 1_001_000))
    permissions = " ".join(f"app{n}.view_model{n}" for n in range(400))
    row = (*(csv_cell("=cell") for _ in ACCOUNT_COLUMNS[:-2]), sequences, permissions)

    def render() -> bytes:
        return review_pdf(
            title="Staff access review 1: evidence",
            manifest={"kind": "access-review", "population": {"accounts": 30}},
            columns=ACCOUNT_COLUMNS,
            rows=[row] * 30,
        )

    pdf = render()
    assert pdf.startswith(b"%PDF-") and b"/Title (Staff access review 1: evidence)" in pdf
    assert render() == pdf
