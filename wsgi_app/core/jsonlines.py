"""`cmd 2>&1 | python -m core.jsonlines`: a one-shot's output in the kit's log shape.

Lines that are JSON objects already pass unchanged; any other line (Django's management
commands print plain text) becomes the `msg` of a line in core/logging.py's shape.
"""

import sys

from core.logging import line


def main() -> None:
    for raw in sys.stdin:
        text = raw.rstrip("\n")
        if text.startswith("{") and text.endswith("}"):
            print(text, flush=True)
        elif text.strip():
            print(line("INFO", "stdout", text), flush=True)


if __name__ == "__main__":
    main()
