"""The house rules that keep the code base from drifting: one contract between trainer and studio, no import
cycle, small modules. Read from the source (ast), so they hold for code no other test happens to run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from trainer.spec import run_folder
from trainer.spec.run_folder import EVENTS, WORKER_EVENTS, EventWriter

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("trainer", "studio", "bench")
FILE_NAME = re.compile(r"^[\w.-]+\.(json|jsonl|log|safetensors|mp4|md)$")
# Files the studio writes and reads itself; no trainer code ever sees them.
# the children's logs; what the Generate tab remembers of picked dataset clips and the real clip it writes
STUDIO_OWN_FILES = {"worker.log", "import.log", "evaluate.log", "caption.log", "picks.json", "real-clip.mp4"}
# Events the studio's generation client yields to its own tab before the worker answers.
STUDIO_OWN_EVENTS = {"queued", "starting"}
MODULE_LINES = 400
LONG_ON_PURPOSE = "long on purpose"


def _sources(*packages: str) -> dict[str, ast.Module]:
    trees = {}
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            trees[module] = ast.parse(path.read_text(), str(path))
    return trees


def _strings(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_every_file_name_the_studio_reads_is_in_the_contract():
    contract = {v for v in vars(run_folder).values() if isinstance(v, str)}
    named = {s for tree in _sources("studio").values() for s in _strings(tree) if FILE_NAME.match(s)}
    assert named - contract - STUDIO_OWN_FILES == set()


def _compared_event_names(tree: ast.AST) -> set[str]:
    """X in `e["event"] == X` and `e.get("event") == X`."""
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or len(node.comparators) != 1:
            continue
        left, right = node.left, node.comparators[0]
        reads_event = "event" in _strings(left) and isinstance(left, (ast.Subscript, ast.Call))
        if reads_event and isinstance(right, ast.Constant) and isinstance(right.value, str):
            names.add(right.value)
    return names


def test_every_event_the_studio_reacts_to_is_in_the_contract():
    compared = set().union(*(_compared_event_names(t) for t in _sources("studio").values()))
    assert compared, "the scan found no event comparison at all: it no longer sees how the studio reads events"
    assert compared - EVENTS.keys() - WORKER_EVENTS.keys() - STUDIO_OWN_EVENTS == set()


def test_the_types_readers_check_are_of_declared_event_fields():
    declared = {kind: set(fields) | {"time"} for kind, fields in EVENTS.items()}  # "time": every event's stamp
    assert {k: set(f) - declared[k] for k, f in run_folder.EVENT_TYPES.items() if set(f) - declared[k]} == {}
    assert {k: set(f) - declared[k] for k, f in run_folder.REQUIRED_EVENT_FIELDS.items() if set(f) - declared[k]} == {}


def test_the_trainer_cannot_write_an_undeclared_event_or_field(tmp_path):
    writer = EventWriter(tmp_path)
    with pytest.raises(ValueError, match="unknown event kind 'preview'"):
        writer.emit("preview", step=1)
    with pytest.raises(ValueError, match=r"step event fields \['grad'\]"):
        writer.emit("step", step=1, grad=0.5)
    assert not (tmp_path / run_folder.METRICS_FILE).exists()


def _imports(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Project modules `module` imports anywhere in its body (function-level imports count too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    found.discard(module)
    return found


def test_the_import_graph_has_no_cycle():
    trees = _sources(*PACKAGES)
    graph = {m: _imports(m, t, set(trees)) for m, t in trees.items()}
    for module in graph:  # a package's __init__ is imported with any of its modules: not a dependency of it
        graph[module] = {d for d in graph[module] if not module.startswith(d + ".")}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                return path + [module, dep]
            if dep not in state and (cycle := visit(dep, path + [module])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, " -> ".join(cycle[cycle.index(cycle[-1]) :])


# The floors of the house, bottom first: a module imports only from its own floor or below. The tiny world is a
# plug-in above the core (the core resolves "tiny" and "sample" through trainer.spec.embedded, by name).
FLOORS = (
    ("vocabulary", ("trainer.spec", "trainer")),  # "trainer" itself: the package, its __version__
    ("core", ("trainer.",)),
    ("tiny world", ("trainer.tinyworld",)),
    ("tiny-base pre-training", ("trainer.pretrain_tiny",)),
    ("commands", ("trainer.cli", "trainer.__main__")),
    ("studio", ("studio",)),
    ("benchmarks", ("bench",)),
)
TINY_WORLD = ("trainer.tinyworld", "trainer.pretrain_tiny")
MAY_IMPORT_THE_TINY_WORLD = (*TINY_WORLD, "trainer.cli", "trainer.__main__", "bench")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix if prefix.endswith(".") else prefix + ".")


def _floor(module: str) -> int:
    """The floor of the longest prefix that holds `module` (trainer.spec.config: the vocabulary, not the core)."""
    matches = [(len(p), i) for i, (_, prefixes) in enumerate(FLOORS) for p in prefixes if _within(module, p)]
    return max(matches)[1]


def _graph() -> dict[str, set[str]]:
    trees = _sources(*PACKAGES)
    return {m: _imports(m, t, set(trees)) for m, t in trees.items()}


def test_no_import_runs_from_a_lower_floor_to_a_higher_one():
    upward = [
        f"{module} ({FLOORS[_floor(module)][0]}) imports {dep} ({FLOORS[_floor(dep)][0]})"
        for module, deps in sorted(_graph().items())
        for dep in sorted(deps)
        if _floor(dep) > _floor(module)
    ]
    assert upward == []


def test_only_the_tiny_world_its_pretraining_and_the_commands_import_the_tiny_world():
    importers = [
        f"{module} imports {dep}"
        for module, deps in sorted(_graph().items())
        for dep in sorted(deps)
        if any(_within(dep, p) for p in TINY_WORLD) and not any(_within(module, p) for p in MAY_IMPORT_THE_TINY_WORLD)
    ]
    assert importers == []


def test_modules_stay_small_or_say_why():
    too_long = []
    for path in [REPO / "app.py", *(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))]:
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MODULE_LINES and LONG_ON_PURPOSE not in doc:
            too_long.append(f"{path.relative_to(REPO)} ({lines} lines)")
    assert too_long == []
