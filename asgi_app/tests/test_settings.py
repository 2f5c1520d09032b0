"""A bad setting stops the service before it starts, with a message naming the fix."""

import os
import subprocess
import sys


def check(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "REALTIME_TOKEN_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "app.settings"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_short_token_key_is_refused_with_what_to_fix():
    result = check(REALTIME_TOKEN_KEY="short")
    assert result.returncode == 1
    assert "REALTIME_TOKEN_KEY: must be at least 32 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_good_settings_pass_the_check():
    result = check(REALTIME_TOKEN_KEY="k" * 40)
    assert result.returncode == 0, result.stderr
