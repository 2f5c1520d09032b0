"""Deleting the example's router (and its marked lines) leaves the service importable."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import KEY

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


def test_service_imports_without_the_example(tmp_path):
    shutil.copytree(APP / "app", tmp_path / "app")
    (tmp_path / "app" / "routes" / "board_export.py").unlink()
    for path in (tmp_path / "app").rglob("*.py"):
        path.write_text(drop_marked_lines(path.read_text()))
    script = (
        "import app.main\n"
        "def paths(routes):\n"
        "    for r in routes:\n"
        "        sub = getattr(r, 'original_router', None)  # an included router, kept whole\n"
        "        yield from paths(sub.routes) if sub else [r.path]\n"
        "print('\\n'.join(sorted(paths(app.main.app.routes))))\n"
    )
    result = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "REALTIME_TOKEN_KEY": KEY},
    )
    assert result.returncode == 0, result.stderr
    routes = result.stdout.split()
    assert "/rt/ws" in routes
    assert "/rt/sse" in routes
    assert not [r for r in routes if "board" in r]
    assert "board" not in (tmp_path / "app" / "main.py").read_text()
