"""Every problem type Tollgate can answer is in docs/errors.md, with its status, and the page
names none that the registry (config/problems.py) does not hold."""

import importlib
import importlib.util
import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

from config import problems

SOURCES = ("billing", "entitlements", "audit", "staff", "config")
ROW = re.compile(r"^\| `([a-z0-9-]+)`[^|]*\| ([^|]+) \|", re.MULTILINE)


def registered() -> dict[str, problems.ProblemType]:
    """The project's registered types: every app's errors module imported first, so each class
    and constant is registered; types a test registers are left out."""
    for app in apps.get_app_configs():
        if app.name in SOURCES and importlib.util.find_spec(f"{app.name}.errors"):
            importlib.import_module(f"{app.name}.errors")
    return {
        slug: problem
        for slug, problem in problems.PROBLEM_TYPES.items()
        if problem.module.split(".")[0] in SOURCES
    }


def documented() -> dict[str, set[str]]:
    """slug -> the status cells of its rows in docs/errors.md."""
    docs = (Path(settings.BASE_DIR) / "docs" / "errors.md").read_text(encoding="utf-8")
    rows: dict[str, set[str]] = {}
    for slug, status in ROW.findall(docs):
        rows.setdefault(slug, set()).add(status.strip())
    return rows


def test_every_registered_problem_type_is_documented_with_its_status():
    rows = documented()
    missing = sorted(slug for slug in registered() if slug not in rows)
    assert missing == [], "add these problem types to docs/errors.md"
    wrong = {
        slug: (problem.status, rows[slug])
        for slug, problem in registered().items()
        if str(problem.status or "any other") not in rows[slug]
    }
    assert wrong == {}, "docs/errors.md gives these types another status"


def test_docs_name_no_problem_type_the_registry_lacks():
    assert sorted(documented().keys() - registered().keys()) == []


def test_the_registry_holds_the_problem_types_it_should():
    found = registered()
    # One from each kind of registration: an app's exception class, a generic type, an app's
    # plain constant, and the lockout with its header.
    assert {"webhook-signature-invalid", "unsupported-media-type", "feature-required",
            "login-locked-out"} <= found.keys()  # fmt: skip
    assert found["login-locked-out"].module == "staff.errors"


def test_no_code_writes_a_problem_slug_outside_the_registry():
    # Responses are built from registered types only: no `slug=` keyword left to pass a literal.
    for folder in SOURCES:
        for path in (Path(settings.BASE_DIR) / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                assert not re.search(r'\bslug\s*=\s*"', path.read_text()) or path.name == (
                    "errors.py"
                ), path
