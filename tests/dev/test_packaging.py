"""The development tools stay out of what production installs (issue 10).

The wheel of the root project holds the runtime (``responder``, ``streams``) and nothing
of the development package; where that package is missing, ``responder stack`` and
``responder demo`` say how to get it instead of failing with a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from responder.cli.devtools import GUIDANCE

ROOT = Path(__file__).resolve().parents[2]

# What a checkout holds besides sources; none of it may matter to the wheel.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".stack",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "results",
)


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The file names in the root project's wheel, built offline from a copy of the checkout
    (the build writes ``build/`` and ``*.egg-info`` next to the sources)."""
    work = tmp_path_factory.mktemp("wheel")
    source, out = work / "src", work / "out"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "-w", str(out), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("musearoo_responder-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_the_runtime_packages_only(wheel_names: set[str]) -> None:
    top_level = {name.split("/", 1)[0] for name in wheel_names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"responder", "streams"}
    for module in ("responder/cli/__init__.py", "responder/settings.py", "streams/app.py"):
        assert module in wheel_names
    assert {"responder/py.typed", "streams/py.typed"} <= wheel_names


def test_the_wheel_holds_nothing_of_the_development_package(wheel_names: set[str]) -> None:
    dev_files = [
        name
        for name in wheel_names
        if name.startswith(("responder_dev/", "dev/", "responder/stack/"))
        or name in {"responder/cli/stack.py", "responder/cli/demo.py"}
    ]
    assert dev_files == []


# Runs the real CLI in a process where `import responder_dev` fails as it does where the
# package is not installed (ModuleNotFoundError naming it).
_WITHOUT_DEV_PACKAGE = """
import sys

class NoDevPackage:
    def find_spec(self, name, path=None, target=None):
        if name == "responder_dev" or name.startswith("responder_dev."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoDevPackage())
from responder.cli import main
main(sys.argv[1:], prog_name="responder")
"""


def _responder_without_dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_DEV_PACKAGE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "args",
    [("stack", "up", "--no-kube"), ("stack", "status", "--json"), ("stack", "--help"), ("demo",)],
)
def test_dev_commands_without_the_package_say_how_to_install_it(args: tuple[str, ...]) -> None:
    done = _responder_without_dev(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [GUIDANCE.format(name=args[0])]
    assert "pip install -e ./dev" in done.stderr


def test_the_runtime_commands_work_without_the_package() -> None:
    listing = _responder_without_dev("--help")
    assert listing.returncode == 0, listing.stderr
    for command in ("serve", "worker", "runbooks", "stack", "demo"):
        assert f"  {command} " in listing.stdout
    runbooks = _responder_without_dev("runbooks", "validate", "runbooks")
    assert runbooks.returncode == 0, runbooks.stderr
