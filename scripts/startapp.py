"""`make startapp APP=notes`: a new Django app in wsgi_app/, listed in INSTALLED_APPS.

Runs inside the wsgi image (Django is there) as the host user, with wsgi_app/ mounted at the
working directory, so the files belong to whoever ran make. The image build copies the whole
source tree, and the `migrate` service migrates every installed app: nothing else to edit.
"""

import keyword
import re
import sys
from pathlib import Path

from django.core.management import call_command

SETTINGS = Path("config/settings.py")
MARKER = "# Your apps: `make startapp APP=name` adds each new one below this line."


def main(app: str) -> int:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", app) or keyword.iskeyword(app):
        print(
            f"startapp: APP={app!r} is not a valid app name: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. make startapp APP=notes)",
            file=sys.stderr,
        )
        return 2
    if Path(app).exists():
        print(f"startapp: wsgi_app/{app} already exists: choose another name", file=sys.stderr)
        return 2
    settings = SETTINGS.read_text()
    if MARKER not in settings:
        print(f"startapp: {SETTINGS} has lost the line {MARKER!r}", file=sys.stderr)
        return 2
    # Django refuses names that shadow an importable module (e.g. `json`), with its own message.
    call_command("startapp", app)
    SETTINGS.write_text(settings.replace(MARKER, f'{MARKER}\n    "{app}",', 1))
    print(f"startapp: wsgi_app/{app} created and added to INSTALLED_APPS")
    print("  next: models in models.py, then `make migrations`; `make up` builds and migrates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
