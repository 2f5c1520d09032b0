"""Add up the JUnit reports of every test suite into one pytest-style summary line.

`make test` runs several pytest sessions (each app's unit tests inside its image, the
end-to-end tests from outside); this prints the line that counts them all, and exits
non-zero when anything failed or a suite wrote no report. The time is the whole run's
(TEST_WALL_SECONDS, from scripts/test.sh: suites run side by side, so their own times would
add up to more), else the suites' sum.
"""

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

EXPECTED = sys.argv[2:]  # suite names that must have reported


def main() -> int:
    reports = Path(sys.argv[1])
    totals = {"failed": 0, "passed": 0, "skipped": 0, "errors": 0}
    seconds = 0.0
    seen = set()
    for path in sorted(reports.glob("*.xml")):
        seen.add(path.stem)
        for suite in ET.parse(path).getroot().iter("testsuite"):  # noqa: S314 (our own files)
            tests, failures = int(suite.get("tests", 0)), int(suite.get("failures", 0))
            errors, skipped = int(suite.get("errors", 0)), int(suite.get("skipped", 0))
            totals["failed"] += failures
            totals["errors"] += errors
            totals["skipped"] += skipped
            totals["passed"] += tests - failures - errors - skipped
            seconds += float(suite.get("time", 0))
            print(f"  {path.stem:<8} {tests:>4} tests, {failures} failed, {errors} errors")
    missing = [name for name in EXPECTED if name not in seen]
    for name in missing:
        print(f"  {name:<8} wrote no report (the suite did not run)")
    parts = [f"{n} {k}" for k, n in totals.items() if n or k == "passed"]
    bad = totals["failed"] or totals["errors"] or missing or not totals["passed"]
    seconds = float(os.environ.get("TEST_WALL_SECONDS") or seconds)
    print(f"{'=' * 20} {', '.join(parts)} in {seconds:.2f}s {'=' * 20}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
