"""scripts/init.py against a small tree that follows the example contract (.example-paths,
`example` line markers, `example-begin`/`example-end` blocks in each comment style)."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("init", Path(__file__).parents[1] / "init.py")
init = importlib.util.module_from_spec(spec)
spec.loader.exec_module(init)

# The old names, spelled in pieces: init (run on the whole kit) must not rewrite this test.
OLD = "py" + "kit"
KIT = "kit"
EX = "bo" + "ard"  # the example's word in the fixture

FILES = {
    "README.md": f"# {OLD.capitalize()}: a stack\n\nSee the {EX}s. <!-- example -->\n",
    "compose.yaml": (
        f"name: ${{COMPOSE_PROJECT_NAME:-{OLD}}}\n"
        f"    image: {OLD}-wsgi\n"
        f"    volumes: [secrets:/run/{KIT}-secrets:ro]\n"
        f"    environment: {{ {KIT.upper()}_HTTPS_URL: x, E2E_{KIT.upper()}: y }}\n"
    ),
    "wsgi_app/config/settings.py": (
        "APPS = [\n"
        '    "core",\n'
        f'    "{EX}",  # example\n'
        "]\n"
        "# example-begin\n"
        f"{EX.upper()}_LIMIT = 5\n"
        "# example-end\n"
        f'TITLE = "{OLD.capitalize()} API"\n'
    ),
    "wsgi_app/pyproject.toml": f'name = "{KIT}-wsgi"\n',
    "wsgi_app/core/static/app.js": f"init();\nshow{EX}(); // example\n",
    "wsgi_app/core/templates/base.html": (
        f'<nav>\n{{# example-begin #}}\n<a href="/{EX}s/">{EX}s</a>\n{{# example-end #}}\n</nav>\n'
    ),
    "wsgi_app/core/static/app.css": f".{EX} {{ color: red; }} /* example */\nbody {{}}\n",
    f"wsgi_app/{EX}/models.py": "class Card: ...\n",
    f"tests/test_{EX}.py": "def test(): ...\n",
    ".example-paths": f"# the example\nwsgi_app/{EX}\ntests/test_{EX}.py\n",
    "copier.yml": "name: {type: str}\n",
    "docs/logo.png": "\0PNG",
}


@pytest.fixture
def tree(tmp_path):
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def grep(root: Path, word: str) -> list[str]:
    return [
        rel
        for rel, data in snapshot(root).items()
        if word.encode() in data.lower() and rel != ".project"
    ]


def test_drop_renames_everything_and_removes_the_example(tree):
    init.init(tree, "Acme Notes", "drop")
    assert grep(tree, OLD) == []
    assert grep(tree, EX) == []
    assert not (tree / "wsgi_app" / EX).exists()
    assert not (tree / "tests" / f"test_{EX}.py").exists()
    assert not (tree / ".example-paths").exists()
    assert not (tree / "copier.yml").exists()
    compose = (tree / "compose.yaml").read_text()
    assert "${COMPOSE_PROJECT_NAME:-acme-notes}" in compose
    assert "image: acme-notes-wsgi" in compose
    assert "/run/acme-notes-secrets" in compose
    assert "ACME_NOTES_HTTPS_URL" in compose
    assert f"E2E_{KIT.upper()}" in compose  # only the prefix is renamed
    settings = (tree / "wsgi_app/config/settings.py").read_text()
    assert settings == 'APPS = [\n    "core",\n]\nTITLE = "Acme Notes API"\n'
    assert (tree / "README.md").read_text().startswith("# Acme Notes: a stack\n")
    assert (tree / "wsgi_app/pyproject.toml").read_text() == 'name = "acme-notes-wsgi"\n'
    assert (tree / "wsgi_app/core/templates/base.html").read_text() == "<nav>\n</nav>\n"
    assert (tree / "wsgi_app/core/static/app.css").read_text() == "body {}\n"
    assert (tree / "docs/logo.png").read_bytes() == b"\0PNG"


def test_keep_keeps_the_example_without_its_markers(tree):
    init.init(tree, "Acme Notes", "keep")
    assert grep(tree, OLD) == []
    assert (tree / "wsgi_app" / EX / "models.py").exists()
    settings = (tree / "wsgi_app/config/settings.py").read_text()
    assert f'    "{EX}",\n]\n{EX.upper()}_LIMIT = 5\n' in settings
    assert "example" not in settings
    assert (tree / "wsgi_app/core/static/app.js").read_text() == f"init();\nshow{EX}();\n"
    assert "example" not in (tree / "wsgi_app/core/templates/base.html").read_text()
    assert (tree / "README.md").read_text().endswith(f"See the {EX}s.\n")


def test_a_second_run_with_the_same_name_changes_nothing(tree):
    init.init(tree, "Acme Notes", "drop")
    before = snapshot(tree)
    assert "nothing to do" in init.init(tree, "  Acme   Notes ", "drop")
    assert snapshot(tree) == before


def test_another_name_after_init_is_refused(tree):
    init.init(tree, "Acme Notes", "keep")
    before = snapshot(tree)
    with pytest.raises(init.InitError, match="already initialised as 'Acme Notes'"):
        init.init(tree, "Other", "keep")
    with pytest.raises(init.InitError, match="already initialised"):
        init.init(tree, "Acme Notes", "drop")
    assert snapshot(tree) == before


def test_files_brought_back_by_an_update_are_renamed_again(tree):
    init.init(tree, "Acme Notes", "drop")
    (tree / "compose.yaml").write_text(f"image: {OLD}-asgi\n")  # what copier update renders
    (tree / "wsgi_app" / EX).mkdir()
    (tree / ".example-paths").write_text(f"wsgi_app/{EX}\n")
    init.init(tree, "Acme Notes", "drop")
    assert (tree / "compose.yaml").read_text() == "image: acme-notes-asgi\n"
    assert not (tree / "wsgi_app" / EX).exists()


def test_a_broken_marker_is_refused_and_nothing_is_written(tree):
    (tree / "Makefile").write_text("# example-begin\nall:\n")
    before = snapshot(tree)
    with pytest.raises(init.InitError, match="Makefile: an example-begin has no example-end"):
        init.init(tree, "Acme Notes", "drop")
    assert snapshot(tree) == before


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme Notes", "acme-notes"),
        ("  ACME  notes ", "acme-notes"),
        ("Café Ünïon", "cafe-union"),
        ("my_app.v2", "my-app-v2"),
    ],
)
def test_names_normalise_to_a_slug(name, slug):
    assert init.slugify(name) == slug


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "no letters or digits"),
        ("---", "no letters or digits"),
        ("2fast", "start with a letter"),
        ('a"b', "letters, digits, spaces"),
        ("x" * 41, "keep it to 40"),
    ],
)
def test_bad_names_are_refused_with_a_message(name, message):
    with pytest.raises(init.InitError, match=message):
        init.slugify(name)


def test_the_command_line_reports_a_refusal_on_stderr(tree, capsys):
    assert init.main(["--name", "", "--root", str(tree)]) == 2
    assert "make init NAME=" in capsys.readouterr().err
