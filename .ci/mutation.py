"""make mutation: mutmut on the pure decision modules, then the score and every survivor.

The modules are `only_mutate` in pyproject.toml's [tool.mutmut] (one line each); a module whose
other functions are not pure decisions names the functions that are in
[tool.tollgate-mutation] only_functions. The mutants run the fast unit tests of
`pytest_add_cli_args_test_selection` on SQLite without migrations: no service, about a few
minutes on 2 cores. Writes mutants/report.md (score, then each survivor's diff), which
docs/testing.md quotes.
"""

import os
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = str(Path(sys.executable).with_name("mutmut"))
DETECTED = {"killed", "timeout"}


def patterns() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    only_functions = config.get("tollgate-mutation", {}).get("only_functions", {})
    names = []
    for path in config["mutmut"]["only_mutate"]:
        module = path.removesuffix(".py").replace("/", ".")
        functions = only_functions.get(path)
        if functions:
            names += [f"{module}.x_{function}__mutmut_*" for function in functions]
        else:
            names.append(f"{module}.*")
    return names


def matches(name: str, selected: list[str]) -> bool:
    from fnmatch import fnmatchcase

    return any(fnmatchcase(name, pattern) for pattern in selected)


def main() -> int:
    # The tests run from mutants/, one level deeper: point them at Stripe's example objects.
    fixtures = ROOT.parent / "shared" / "stripe" / "fixtures3.json"
    os.environ.setdefault("TOLLGATE_STRIPE_FIXTURES", str(fixtures))
    selected = patterns()
    subprocess.run([MUTMUT, "run", *selected], cwd=ROOT, check=False)
    listing = subprocess.run(
        [MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    verdicts = {}
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and matches(name, selected):
            verdicts[name] = status
    counts = Counter(verdicts.values())
    total = sum(counts.values())
    if not total or counts["not checked"]:
        print(f"mutation: {counts['not checked']} of {total} mutants were not checked")
        return 1
    detected = sum(counts[status] for status in DETECTED)
    score = 100 * detected / total
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    headline = f"Mutation score: {score:.1f}% ({detected} of {total} mutants detected: {summary})"
    lines = [headline, ""]
    for name in sorted(n for n, status in verdicts.items() if status not in DETECTED):
        diff = subprocess.run(
            [MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout
        changed = [row for row in diff.splitlines() if row[:2] in ("- ", "+ ")]
        lines += [f"- `{name}` ({verdicts[name]})", "  ```diff", *[f"  {row}" for row in changed]]
        lines += ["  ```"]
    report = "\n".join(lines) + "\n"
    (ROOT / "mutants" / "report.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
