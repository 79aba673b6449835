"""Every problem type Tollgate can answer is in docs/errors.md: the exception classes of every
app, the tables that map DRF's and Django's statuses, and every `slug=` written in the code."""

import contextlib
import importlib
import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

from config import problems

SOURCES = ("billing", "entitlements", "audit", "staff", "config")


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def slugs_in_use() -> set[str]:
    for app in apps.get_app_configs():  # every app's errors module, so its classes exist
        if app.name in SOURCES or app.name.startswith("config."):
            with contextlib.suppress(ModuleNotFoundError):
                importlib.import_module(f"{app.name}.errors")
    # The project's own classes only (a test may define one to exercise the renderer).
    found = {
        cls.slug
        for cls in _subclasses(problems.ProblemError)
        if cls.__module__.split(".")[0] in SOURCES
    }
    found |= {slug for slug, _ in problems._DRF_SLUGS.values()}
    found |= {slug for slug, _ in problems._BARE_STATUS.values()}
    found.add("error")  # the DRF handler's fallback for a status no table names
    for folder in SOURCES:
        for path in (Path(settings.BASE_DIR) / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found |= set(re.findall(r'slug\s*=\s*"([a-z0-9-]+)"', path.read_text()))
    return found


def test_every_problem_type_is_documented():
    docs = (Path(settings.BASE_DIR) / "docs" / "errors.md").read_text(encoding="utf-8")
    missing = sorted(slug for slug in slugs_in_use() if f"`{slug}`" not in docs)
    assert missing == [], "add these problem types to docs/errors.md"


def test_the_scan_finds_the_problem_types_it_should():
    found = slugs_in_use()
    # One from each source: an exception class, DRF's table, Django's table, a literal.
    assert {"webhook-signature-invalid", "unsupported-media-type", "internal-error",
            "login-locked-out"} <= found  # fmt: skip
