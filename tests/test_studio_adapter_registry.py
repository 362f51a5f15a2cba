"""The adapter registry (studio.adapter_registry): trained and imported adapters listed with their cards,
zipped, deleted, imported from a folder or an upload."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from studio.adapter_registry import CARD_FILE, WEIGHTS_FILE, AdapterError, AdapterRegistry


# --- adapter registry -----------------------------------------------------------------------------------
def make_adapter(folder: Path, card: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / WEIGHTS_FILE).write_bytes(b"weights")
    if card is not None:
        (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


CARD = {
    "base_model": "nvidia/Cosmos-Predict2.5-2B",
    "revision": "diffusers/base/post-trained",
    "adapter": "dora",
    "rank": 32,
    "alpha": 32.0,
    "steps": 1200,
    "dataset": {"path": "data/gr1", "clips": 92, "digest": "ab12"},
    "final_loss": 0.061,
    "created": "2025-01-01T00:00:00Z",
    "target_modules": ["to_q"],
    "config": {},
}


@pytest.fixture
def registry(tmp_path):
    ws = tmp_path / "ws"
    make_adapter(ws / "runs" / "pick" / "adapter", CARD)
    (ws / "runs" / "unfinished").mkdir(parents=True)  # a run without an adapter yet is not listed
    make_adapter(ws / "adapters" / "shared")  # imported without a card
    return AdapterRegistry(ws)


def test_registry_lists_run_and_imported_adapters_with_card_fields(registry):
    pick, shared = registry.list()
    assert (pick.name, pick.source, pick.adapter, pick.rank, pick.final_loss) == ("pick", "run", "dora", 32, 0.061)
    assert pick.base_model == CARD["base_model"] and pick.path == registry.runs_dir / "pick" / "adapter"
    assert (pick.dataset, pick.steps, pick.created) == ("data/gr1", 1200, "2025-01-01T00:00:00Z")
    assert (shared.name, shared.source, shared.rank, shared.base_model) == ("shared", "imported", None, None)
    table = registry.table()
    assert table["name"].tolist() == ["pick", "shared"] and {"rank", "alpha", "path"} <= set(table.columns)


def test_registry_zip_holds_the_adapter_folder(registry):
    path = registry.zip("pick")
    assert path.parent == registry.exports_dir
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == [f"pick/{CARD_FILE}", f"pick/{WEIGHTS_FILE}"]
        assert archive.read(f"pick/{WEIGHTS_FILE}") == b"weights"


def test_registry_delete_needs_the_name_typed(registry):
    with pytest.raises(AdapterError, match="Type the adapter name 'pick' exactly"):
        registry.delete("pick", confirm="pic")
    assert (registry.runs_dir / "pick" / "adapter").exists()
    registry.delete("pick", confirm="pick")
    assert not (registry.runs_dir / "pick" / "adapter").exists() and (registry.runs_dir / "pick").exists()
    assert [a.name for a in registry.list()] == ["shared"]


def test_registry_import(registry, tmp_path):
    empty = tmp_path / "upload-empty"
    empty.mkdir()
    (empty / "adapter_model.bin").write_bytes(b"x")
    with pytest.raises(AdapterError, match=f"holds no {WEIGHTS_FILE}; choose the adapter folder"):
        registry.import_folder(empty, "new")
    with pytest.raises(AdapterError, match="'shared' already exists"):
        registry.import_folder(make_adapter(tmp_path / "upload", CARD), "shared")
    imported = registry.import_folder(tmp_path / "upload", "new")
    assert (imported.source, imported.rank) == ("imported", 32)
    assert (registry.imported_dir / "new" / WEIGHTS_FILE).read_bytes() == b"weights"
    assert [a.name for a in registry.list()] == ["pick", "new", "shared"]
    assert not [p for p in registry.imported_dir.iterdir() if p.name.startswith(".")]  # no staging left behind


# --- adapter upload (studio.adapters) -------------------------------------------------------------------
def test_registry_imports_an_uploaded_zip_or_files(registry, tmp_path):
    folder = make_adapter(tmp_path / "made" / "pick-v2", CARD)
    archive = tmp_path / "pick-v2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in folder.iterdir():
            zf.write(file, Path("pick-v2") / file.name)
    assert registry.import_upload([archive], "from-zip").rank == 32
    loose = registry.import_upload([folder / WEIGHTS_FILE, folder / CARD_FILE], "from-files")
    assert (loose.source, loose.adapter) == ("imported", "dora")
    with pytest.raises(AdapterError, match=f"holds no {WEIGHTS_FILE}"):
        registry.import_upload([folder / CARD_FILE], "card-only")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape/pytorch_lora_weights.safetensors", b"x")
    with pytest.raises(AdapterError, match="has an entry outside its folder"):
        registry.import_upload([evil], "evil")
    assert not (registry.imported_dir.parent / "escape").exists()
    assert [a.name for a in registry.list()] == ["pick", "from-files", "from-zip", "shared"]
