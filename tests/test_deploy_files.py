"""Static checks of the Dockerfile and the Space configurations (no Docker engine or Space needed), and the
workspace default on a Space."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from conftest import REPO


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n"), f"{readme} has no front matter"
    return yaml.safe_load(text.split("---\n")[1])


def requirement_pin(name: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{name}=="):
            return line.split("==")[1].strip()
    raise AssertionError(f"{name} is not pinned in requirements.txt")


def test_dockerfile_pins_a_cuda_base_installs_dependencies_first_and_checks_health():
    steps = instructions(REPO / "Dockerfile")
    words = [w for w, _ in steps]
    base = next(arg for w, arg in steps if w == "FROM")
    image, _, tag = base.partition(":")
    assert image == "nvidia/cuda" and re.fullmatch(r"\d+\.\d+\.\d+-(cudnn-)?runtime-ubuntu\d\d\.\d\d", tag), base
    copies = [(i, arg) for i, (w, arg) in enumerate(steps) if w == "COPY"]
    code = next(i for i, arg in copies if arg == ". .")
    requirements = next(i for i, arg in copies if "requirements.txt" in arg.split()[:-1])
    install = next(i for i, (w, arg) in enumerate(steps) if w == "RUN" and "pip install -r requirements.txt" in arg)
    assert requirements < install < code  # a code change does not reinstall the dependencies
    health = next(arg for w, arg in steps if w == "HEALTHCHECK")
    assert health.split("CMD", 1)[1].strip() and "7860" in health
    exposed = next(arg for w, arg in steps if w == "EXPOSE")
    assert exposed == "7860"
    users = [arg for w, arg in steps if w == "USER"]
    assert users and users[-1] not in ("root", "0") and words.index("USER") > code
    cmd = shlex.split(next(arg for w, arg in steps if w == "CMD").strip("[]").replace(",", " "))
    assert cmd[:2] == ["python", "app.py"] and cmd[cmd.index("--port") + 1] == exposed
    assert "--workspace" not in cmd  # the app picks ./workspace, or /data/workspace on a Space
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "workspace"} <= set(ignored)


def test_gradio_space_front_matter_matches_the_project():
    meta = front_matter(REPO / "README.md")
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == requirement_pin("gradio")
    assert (REPO / meta["app_file"]).is_file()
    assert tuple(int(x) for x in str(meta["python_version"]).split(".")) >= (3, 11)
    assert meta["title"] and meta["emoji"] and "colorFrom" in meta and "colorTo" in meta


def test_docker_space_template_serves_the_exposed_port():
    meta = front_matter(REPO / "docs" / "space" / "README.md")
    exposed = next(arg for w, arg in instructions(REPO / "Dockerfile") if w == "EXPOSE")
    assert meta["sdk"] == "docker" and str(meta["app_port"]) == exposed
    assert meta["suggested_storage"] in ("small", "medium", "large")
    assert meta["title"] and "suggested_hardware" in meta


def test_on_a_space_with_persistent_storage_the_workspace_and_caches_live_there(tmp_path):
    from studio.workspace import DEFAULT_WORKSPACE, default_workspace

    env = {"SPACE_ID": "someone/cosmos-lora-studio"}
    assert default_workspace(env, tmp_path) == str(tmp_path / "workspace")
    assert env["HF_HOME"] == str(tmp_path / ".huggingface")
    assert env["COSMOS_STUDIO_CACHE"].startswith(str(tmp_path))
    kept = {"SPACE_ID": "x/y", "HF_HOME": "/elsewhere"}
    default_workspace(kept, tmp_path)
    assert kept["HF_HOME"] == "/elsewhere"  # a cache the user set is kept
    assert default_workspace({"SPACE_ID": "x/y"}, tmp_path / "absent") == DEFAULT_WORKSPACE  # no storage bought
    local: dict[str, str] = {}
    assert default_workspace(local, tmp_path) == DEFAULT_WORKSPACE and local == {}  # not a Space
