"""Deleting the example leaves a working site: core and config import, `check` passes.

The example is the `board` app and every line marked `# example` (or a block between
`# example-begin` and `# example-end`), as listed in the repository's `.example-paths`.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent


def drop_marked_lines(text: str) -> str:
    # The rule of `.example-paths`; each test image holds only its own app, hence one per app.
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        mark = line.strip()
        if mark == "# example-begin":
            skipping = True
        elif mark == "# example-end":
            skipping = False
        elif not skipping and not line.rstrip().endswith("# example"):
            kept.append(line)
    return "".join(kept)


def test_core_stands_without_the_example(tmp_path):
    copy = tmp_path / "app"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("tests", "staticfiles", "media"))
    shutil.rmtree(copy / "board")
    for path in copy.rglob("*.py"):
        path.write_text(drop_marked_lines(path.read_text()))
    assert "board" not in (copy / "config" / "settings.py").read_text()
    assert "board" not in (copy / "config" / "urls.py").read_text()
    check = run_in(copy, "manage.py", "check", "--fail-level", "WARNING")
    assert check.returncode == 0, check.stderr
    urls = run_in(copy, "-c", "import django; django.setup(); import config.urls, core.urls")
    assert urls.returncode == 0, urls.stderr


def run_in(copy: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, *args],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(copy)},
    )
