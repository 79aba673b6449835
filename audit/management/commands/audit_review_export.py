"""Export a signed daily review, or a completed access review, as its evidence ZIP."""

import json
from argparse import ArgumentParser
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.errors import AccessReviewRefused, ReviewRefused
from audit.models import AccessReview, DailyReview
from audit.review_evidence import review_evidence_export


class Command(BaseCommand):
    help = (
        "Write the evidence of a signed daily review (--day) or a completed staff access review "
        "(--access-review ID): a ZIP of the CSV, the signed manifest and the public key. The "
        "manifest's SHA-256 is recorded in the trail."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--day", help="the reviewed UTC day, YYYY-MM-DD")
        which.add_argument("--access-review", type=int, help="the access review's id")
        parser.add_argument("--out", required=True, help="the ZIP file to write (must not exist)")

    def handle(
        self,
        *args: Any,
        day: str | None = None,
        access_review: int | None = None,
        out: str,
        **options: Any,
    ) -> None:
        review = self._review(day, access_review)
        path = Path(out)
        if path.exists():
            raise CommandError(f"{out} exists: evidence is never written over")
        try:
            evidence = review_evidence_export(review=review)
        except (ReviewRefused, AccessReviewRefused) as refused:
            raise CommandError(refused.detail) from refused
        path.write_bytes(evidence.content)
        self.stdout.write(
            json.dumps(
                {
                    "file": str(path),
                    "manifest_sha256": evidence.manifest_sha256,
                    "population": evidence.population,
                }
            )
        )

    def _review(self, day: str | None, access_review: int | None) -> DailyReview | AccessReview:
        if access_review is not None:
            access = AccessReview.objects.filter(pk=access_review).first()
            if access is None:
                raise CommandError(f"no access review {access_review}")
            return access
        if day is None:  # argparse requires one of the two; call_command is held to it too
            raise CommandError("give --day or --access-review")
        try:
            reviewed = date.fromisoformat(day)
        except ValueError as error:
            raise CommandError(f"not a date (YYYY-MM-DD): {day!r}") from error
        review = DailyReview.objects.filter(day=reviewed).first()
        if review is None:
            raise CommandError(f"no daily review of {reviewed.isoformat()}")
        return review
