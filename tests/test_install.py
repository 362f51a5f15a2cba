"""The Makefile: `make studio` / `make test` create and use .venv, install once, pass ARGS on, pick the torch build.

Runs the real Makefile with a stand-in interpreter that records every call (and creates a stand-in venv), so
nothing is installed. `.ci/run` proves the same path with a real Python on a clean clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

FAKE_PYTHON = """#!/bin/sh
echo "$0 $*" >> "$CALLS"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && echo "home = /usr/bin" > "$3/pyvenv.cfg" && cp "$0" "$3/bin/python"
fi
exit 0
"""
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def project(tmp_path) -> Path:
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    fake = tmp_path / "bootstrap-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return tmp_path


def make(project: Path, *args: str) -> list[str]:
    """Run make; return the interpreter calls it made, as 'interpreter-path arguments' relative to the project."""
    calls = project / "calls.log"
    calls.unlink(missing_ok=True)
    # Under `make test ARGS=...` the outer make's variables reach us through MAKEFLAGS and the environment.
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ARGS", "PYTHON", "VENV", "TORCH_INDEX", "BOOTSTRAP")
    env = {k: v for k, v in os.environ.items() if k not in outer}
    result = subprocess.run(
        ["make", "--no-print-directory", f"BOOTSTRAP={project / 'bootstrap-python'}", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "CALLS": str(calls)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line.replace(str(project) + "/", "") for line in lines]


def test_studio_creates_the_venv_installs_once_and_passes_args(project):
    first = make(project, "studio", "ARGS=--port 7861 --workspace /tmp/ws")
    assert first == [
        "bootstrap-python -c import sys; sys.exit(sys.version_info < (3, 11))",
        "bootstrap-python -m venv .venv",
        ".venv/bin/python --version",
        ".venv/bin/python -m pip install -q -r requirements.txt",
        ".venv/bin/python app.py --port 7861 --workspace /tmp/ws",
    ]
    assert make(project, "studio") == [".venv/bin/python app.py"]  # installed already: straight to the app
    os.utime(project / "requirements.txt")  # a changed requirement file installs again
    assert make(project, "studio")[0] == ".venv/bin/python -m pip install -q -r requirements.txt"


def test_test_installs_dev_requirements_once_and_runs_pytest_with_args(project):
    calls = make(project, "test", "ARGS=-k publish")
    assert calls[-3:] == [
        ".venv/bin/python -m pip install -q -r requirements.txt",
        ".venv/bin/python -m pip install -q -r requirements-dev.txt",
        ".venv/bin/python -m pytest -k publish",
    ]
    assert make(project, "test") == [".venv/bin/python -m pytest"]


def test_torch_index_installs_that_build_first_and_switching_it_reinstalls(project):
    torch_version = next(
        line.split("==")[1]
        for line in (project / "requirements.txt").read_text().splitlines()
        if line.startswith("torch==")
    )
    calls = make(project, "deps", f"TORCH_INDEX={CPU_INDEX}")
    assert calls[-2:] == [
        f".venv/bin/python -m pip install -q --force-reinstall --no-deps --index-url {CPU_INDEX} torch=={torch_version}",
        ".venv/bin/python -m pip install -q -r requirements.txt",
    ]
    assert make(project, "deps", f"TORCH_INDEX={CPU_INDEX}") == []
    assert make(project, "deps") == [".venv/bin/python -m pip install -q -r requirements.txt"]  # PyPI's build


def test_python_override_uses_that_interpreter_and_no_venv(project):
    other = project / "other-python"
    shutil.copy(project / "bootstrap-python", other)
    calls = make(project, "studio", f"PYTHON={other}")
    assert calls == ["other-python -m pip install -q -r requirements.txt", "other-python app.py"]
    assert not (project / ".venv").exists()
    assert make(project, "studio", f"PYTHON={other}") == ["other-python app.py"]


def test_ci_proves_the_venv_path_on_a_clean_clone():
    script = (REPO / ".ci" / "run").read_text()
    assert "git clone" in script and "make test" in script and "test ! -e .venv" in script
    assert ".venv/pyvenv.cfg" in script
