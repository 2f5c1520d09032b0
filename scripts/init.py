#!/usr/bin/env python3
"""Make the kit your project: `make init NAME="Acme Notes" [EXAMPLE=keep|drop]`.

Renames what a user sees, in every text file of the tree (the rules are in `renames`):
the kit's capitalised name becomes the name as given (README heading, page and OpenAPI
titles), its lower-case name the slug `acme-notes` (compose project, image names), the
package names (pyproject, uv.lock), the `KIT_` prefix of environment variables and the secrets
mount path take the slug too.

and handles the example domain (`.example-paths` lists its files and folders; in shared files
its lines end with the comment `example`, its blocks sit between `example-begin` and
`example-end` comment lines, in `#`, `//`, `/* */`, `{# #}` or `<!-- -->` style):
EXAMPLE=drop deletes both, EXAMPLE=keep keeps the code and deletes only the markers.

The answers are recorded in `.project`: a second run with the same answers changes nothing
(but renames files a `copier update` brought back from the kit), and a run with other
answers is refused (start again from a fresh copy of the kit). Python 3.11+
standard library only: runs on the host and in the python image.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import unicodedata
from pathlib import Path

STATE_FILE = ".project"
MANIFEST = ".example-paths"
# Not the project's files: version control, build output, local environments and caches.
SKIP_DIRS = {
    ".git",
    "build",
    "node_modules",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
}
# The kit as a template; a project made from it is not one.
TEMPLATE_ONLY = ["copier.yml", "{{ _copier_conf.answers_file }}.jinja"]
MAX_SLUG = 40
# Spelled in pieces, like every old name below: this file never renames its own rules.
OLD = "py" + "kit"
OLD_TITLE = OLD.capitalize()

_COMMENT = r"(?:#|//|/\*|\{#|<!--)"
_COMMENT_END = r"(?:\*/|#\}|-->)?"
MARKED_LINE = re.compile(rf"\s*{_COMMENT}\s*example\s*{_COMMENT_END}\s*$")
BLOCK_BEGIN = re.compile(rf"^\s*{_COMMENT}\s*example-begin\s*{_COMMENT_END}\s*$")
BLOCK_END = re.compile(rf"^\s*{_COMMENT}\s*example-end\s*{_COMMENT_END}\s*$")


class InitError(Exception):
    """A refused run: the message says what to change."""


def slugify(name: str) -> str:
    """`Acme Notes!` -> `acme-notes`; refuses what cannot name a compose project or a package."""
    if not re.fullmatch(r"[\w .-]*", name):
        raise InitError(
            f"NAME {name!r}: use letters, digits, spaces, dots, dashes and underscores only"
        )
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    if not slug:
        raise InitError(
            f"NAME {name!r} has no letters or digits: give the project's name, "
            'e.g. make init NAME="Acme Notes"'
        )
    if not slug[0].isalpha():
        raise InitError(f"NAME {name!r} gives the slug {slug!r}: it must start with a letter")
    if len(slug) > MAX_SLUG:
        raise InitError(f"NAME {name!r} gives a {len(slug)}-character slug: keep it to {MAX_SLUG}")
    return slug


def renames(name: str, slug: str) -> list[tuple[re.Pattern[str], str]]:
    ident = slug.replace("-", "_")
    return [
        (re.compile("/run/" + "kit-secrets"), f"/run/{slug}-secrets"),
        (re.compile(r"\b" + "kit-" + r"(wsgi|asgi|e2e-tests|tests|loadtest)\b"), slug + r"-\1"),
        (re.compile(r"\b" + "KIT_" + r"(?=[A-Z0-9])"), f"{ident.upper()}_"),
        (re.compile(OLD_TITLE), name.replace("\\", r"\\")),
        (re.compile(OLD), slug),
    ]


def strip_example(text: str, drop: bool) -> str:
    """Delete the example's marked lines and blocks (drop) or only their markers (keep)."""
    out: list[str] = []
    in_block = False
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if BLOCK_BEGIN.match(line):
            if in_block:
                raise InitError(f"line {number}: example-begin inside another example block")
            in_block = True
            continue
        if BLOCK_END.match(line):
            if not in_block:
                raise InitError(f"line {number}: example-end without example-begin")
            in_block = False
            continue
        if in_block and drop:
            continue
        marked = MARKED_LINE.search(line)
        if marked:
            if drop:
                continue
            code = line[: marked.start()].rstrip()
            if not code:
                continue  # a comment line that only carried the marker
            line = code + ("\n" if line.endswith("\n") else "")
        out.append(line)
    if in_block:
        raise InitError("an example-begin has no example-end")
    return "".join(out)


def text_files(root: Path):
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts) or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary (images)
        try:
            yield path, data.decode("utf-8")
        except UnicodeDecodeError:
            continue


def read_state(root: Path) -> dict[str, str]:
    state = root / STATE_FILE
    if not state.exists():
        return {}
    pairs = (line.split("=", 1) for line in state.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def init(root: Path, name: str, example: str) -> str:
    name = " ".join(name.split())
    slug = slugify(name)
    done = read_state(root)
    # The same answers again run again: every rule is idempotent, so an initialised tree is
    # left as it is, and files a `copier update` brought back from the kit are renamed too.
    if done and (done.get("slug"), done.get("example")) != (slug, example):
        raise InitError(
            f"this project was already initialised as {done.get('name')!r} "
            f"(slug {done.get('slug')}, example {done.get('example')}); init runs once: "
            "start again from a fresh copy of the kit to choose another name"
        )

    manifest = root / MANIFEST
    example_paths = []
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                target = (root / line).resolve()
                if root.resolve() not in target.parents:
                    raise InitError(f"{MANIFEST}: {line!r} is outside the project")
                example_paths.append(target)

    # Every file is read and checked before the first one is written: a refused run
    # (a broken marker) leaves the tree as it was.
    rules = renames(name, slug)
    changes: dict[Path, str] = {}
    for path, text in text_files(root):
        if path in (manifest, Path(__file__).resolve()):
            continue
        try:
            new = strip_example(text, drop=example == "drop")
        except InitError as err:
            raise InitError(f"{path.relative_to(root)}: {err}") from None
        for pattern, replacement in rules:
            new = pattern.sub(replacement, new)
        if new != text:
            changes[path] = new

    for path, new in changes.items():
        path.write_text(new)
    if example == "drop":
        for target in example_paths:
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    manifest.unlink(missing_ok=True)
    for rel in TEMPLATE_ONLY:
        (root / rel).unlink(missing_ok=True)
    for path in sorted(root.rglob(f"*{OLD}*"), key=lambda p: -len(p.parts)):
        if not any(part in SKIP_DIRS for part in path.relative_to(root).parts):
            path.rename(path.with_name(path.name.replace(OLD, slug)))
    (root / STATE_FILE).write_text(
        "# Written by `make init` (scripts/init.py): what this project was made as.\n"
        f"name={name}\nslug={slug}\nexample={example}\n"
    )
    if done and not changes:
        return f"already initialised as {name!r} ({slug}, example {example}): nothing to do"
    return f"initialised {name!r}: slug {slug}, example {example}, {len(changes)} files changed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help='the project\'s name, e.g. "Acme Notes"')
    parser.add_argument("--example", choices=["keep", "drop"], default="keep")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    try:
        print(init(args.root, args.name, args.example))
    except InitError as err:
        print(f"init: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
