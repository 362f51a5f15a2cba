"""The latent/prompt cache (`cache: auto`): same tensors and losses as live encoding, windows, reuse, rebuild."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, read_events, run_trainer, tiny_config, write_clip_dataset, write_config
from safetensors.torch import load_file

from trainer import adapters, cache, cache_identity, cosmos
from trainer.batches import LiveBatches, load_clips
from trainer.data_plan import step_generator, window_start
from trainer.spec.config import config_from_dict

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """4 clips of 13 frames: with num_frames 9 each has 5 possible windows."""
    return write_clip_dataset(tmp_path_factory.mktemp("cache-data"), clips=4, frames=13, seed=11)


def _cfg(data, **overrides):
    return config_from_dict(tiny_config(data, Path("unused"), cache="auto", **overrides))


def _pipe(cfg):
    pipe = cosmos.load_pipeline("tiny")
    torch.manual_seed(0)
    adapters.attach(pipe.transformer, cfg)
    return pipe


def _cached(cfg, clips, fingerprint, root):
    """What make_batches does on one process: build, release the encoders, swap in the prompt tail."""
    pipe = _pipe(cfg)
    latent_cache = cache.LatentCache(cfg, pipe, clips, fingerprint, root=root)
    report = latent_cache.build(pipe, CPU, progress=False)
    cache.release_encoders(pipe)
    if latent_cache.projection is not None:
        pipe.transformer.crossattn_proj = cache.PromptTail(pipe.transformer.crossattn_proj)
    return pipe, latent_cache, latent_cache.batches(pipe, CPU), report


@pytest.mark.parametrize("targets", ["recipe", "with-projection"])
def test_cached_batches_give_the_live_tensors_and_losses(data, tmp_path, targets):
    """Every window and both prompt paths (projected; raw when crossattn_proj is an adapter target)."""
    extra = {"target_modules": ["to_q", "to_k", "crossattn_proj.0"]} if targets == "with-projection" else {}
    cfg = _cfg(data, cache_windows=8, cfg_dropout=0.5, **extra)  # 8 >= 5 windows: both paths draw the same one
    clips, fingerprint = load_clips(cfg, None)
    live_pipe = _pipe(cfg)
    live = LiveBatches(cfg, live_pipe, clips, CPU)
    pipe, latent_cache, cached, _ = _cached(cfg, clips, fingerprint, tmp_path)
    assert (latent_cache.projection is None) == (targets == "with-projection")
    assert isinstance(pipe.transformer.crossattn_proj, cache.PromptTail) == (targets == "recipe")
    dropped = 0
    for step in range(1, 7):
        indices, epoch = [step % len(clips)], step
        (live_clean, live_embeds), (clean, embeds) = live.get(indices, epoch), cached.get(indices, epoch)
        torch.testing.assert_close(clean, live_clean, rtol=0, atol=1e-6)
        draw = cosmos.draw_flow_batch(
            clean.shape, cfg.conditional_frames, cfg.cfg_dropout, step_generator(0, step, 0, 0)
        )
        dropped += int(draw.drop_prompt.sum())
        scale = cosmos.vae_scale_factors(live_pipe.vae)[1]
        expected = cosmos.flow_matching_loss(
            live_pipe.transformer, live_clean, live_embeds, draw, 1e-4, spatial_scale=scale
        )
        loss = cosmos.flow_matching_loss(pipe.transformer, clean, embeds, draw, 1e-4, spatial_scale=scale)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 < dropped < 6  # both a dropped (empty) prompt and a kept one were compared


def test_projected_prompt_is_a_hundredth_of_the_raw_embedding(data, tmp_path):
    cfg = _cfg(data)
    clips, fingerprint = load_clips(cfg, None)
    _, latent_cache, _, _ = _cached(cfg, clips, fingerprint, tmp_path)
    stored = load_file(str(next(iter(latent_cache.prompts.values()))))["embeds"]
    tc = cosmos.load_pipeline("tiny").transformer.config
    assert stored.shape == (cache.PROMPT_TOKENS, tc.encoder_hidden_states_channels)  # not crossattn_proj_in_channels


def test_a_longer_clip_gets_several_windows_and_trains_on_them_only(data, tmp_path):
    cfg = _cfg(data, cache_windows=2)
    clips, fingerprint = load_clips(cfg, None)
    _, latent_cache, _, report = _cached(cfg, clips, fingerprint, tmp_path)
    assert all(clip.frames == 13 for clip in clips)
    assert [sorted(dict(w)) for w in latent_cache.windows] == [[0, 4]] * len(clips)
    assert len(list((latent_cache.folder / "videos").glob("*.safetensors"))) == 2 * len(clips)
    assert report.total == 2 * len(clips) + len({c.caption for c in clips})
    drawn = {window_start(13, 9, cfg.seed, epoch, 0, choices=2) for epoch in range(40)}
    assert drawn == {0, 4}  # temporal augmentation kept: each epoch draws one of the cached windows
    assert cache.cached_starts(9, 9, 4) == [0] and cache.cached_starts(13, 9, 8) == [0, 1, 2, 3, 4]


def test_cache_is_reused_and_rebuilt_when_resolution_or_caption_changes(data, tmp_path):
    cfg = _cfg(data, cache_windows=1)
    clips, fingerprint = load_clips(cfg, None)
    prompts = len({c.caption for c in clips})
    first = _cached(cfg, clips, fingerprint, tmp_path)[3]
    assert (first.total, first.reused, first.encoded) == (len(clips) + prompts, 0, len(clips) + prompts)
    again = _cached(cfg, clips, fingerprint, tmp_path)[3]
    assert (again.reused, again.encoded) == (again.total, 0)

    taller = _cfg(data, cache_windows=1, height=48)
    resized = _cached(taller, *load_clips(taller, None), tmp_path)[3]
    assert (resized.reused, resized.encoded) == (prompts, len(clips))  # captions unchanged, every latent new

    edited = write_clip_dataset(tmp_path / "edited", clips=4, frames=13, seed=11)  # the same videos
    (edited / "metas" / "clip01.txt").write_text("A green box slides down slowly.")
    recaptioned = _cfg(edited, cache_windows=1)
    changed = _cached(recaptioned, *load_clips(recaptioned, None), tmp_path)[3]
    assert (changed.reused, changed.encoded) == (changed.total - 1, 1)


def test_too_little_disk_space_is_refused_before_encoding(data, tmp_path, monkeypatch):
    cfg = _cfg(data, cache_windows=1)
    clips, fingerprint = load_clips(cfg, None)
    pipe = _pipe(cfg)
    latent_cache = cache.LatentCache(cfg, pipe, clips, fingerprint, root=tmp_path)
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(cache.CacheError, match=r"needs [0-9.]+ GB in .* only 0.0 GB are free; .* cache: off"):
        latent_cache.build(pipe, CPU, progress=False)
    assert not list(latent_cache.folder.rglob("*.safetensors"))


def test_components_fingerprint_follows_the_weights(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(cosmos.tiny_model_dir(), model)
    pipe = cosmos.load_pipeline(str(model))
    before = cache.components_fingerprint(pipe, cache.frozen_projection(pipe.transformer))
    weights = next((model / "vae").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")  # one byte of the VAE changed, same size
    os.utime(weights, ns=(0, 0))
    after = cache.components_fingerprint(pipe, cache.frozen_projection(pipe.transformer))
    assert before["vae"] != after["vae"] and before["text_encoder"] == after["text_encoder"]
    assert cache_identity.digest(before) != cache_identity.digest(after)


# --------------------------------------------------------------------------------------------- end to end
def _steps(run_dir):
    return [e for e in read_events(run_dir) if e["event"] == "step"]


def _fresh_cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder for the child processes, holding only the tiny model (built here, before they start)."""
    monkeypatch.setenv("COSMOS_STUDIO_CACHE", str(tmp_path / "cache"))
    cosmos.tiny_model_dir()
    return tmp_path / "cache"


def test_cached_and_uncached_runs_give_the_same_losses_and_a_second_run_reuses(tmp_path, data, monkeypatch):
    env = {"COSMOS_STUDIO_CACHE": str(_fresh_cache(tmp_path, monkeypatch))}
    base = dict(max_steps=6, learning_rate=5e-3, cache_windows=8, cfg_dropout=0.3)
    runs = {}
    for name, mode in [("live", "off"), ("cached", "auto"), ("again", "auto")]:
        cfg = write_config(
            tmp_path / f"{name}.json", tiny_config(data, tmp_path / "runs", name=name, cache=mode, **base)
        )
        result = run_trainer("train", "--config", str(cfg), env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = tmp_path / "runs" / name
    live, cached = _steps(runs["live"]), _steps(runs["cached"])
    assert [e["loss"] for e in cached] == pytest.approx([e["loss"] for e in live], rel=1e-5)
    assert not [e for e in read_events(runs["live"]) if e["event"] == "cache"]
    first = [e for e in read_events(runs["cached"]) if e["event"] == "cache"]
    assert (first[0]["done"], first[0]["total"]) == (0, 24)
    assert (first[-1]["done"], first[-1]["total"], first[-1]["reused"]) == (4 * 5 + 4, 24, 0)  # 5 windows, 4 captions
    second = [e for e in read_events(runs["again"]) if e["event"] == "cache"]
    assert [(e["done"], e["total"], e["reused"]) for e in second] == [(0, 0, 24)]
    assert [e["loss"] for e in _steps(runs["again"])] == pytest.approx([e["loss"] for e in cached], rel=1e-6)
    # the first cached run loads the encoders to fill the cache; the second, fully cached, never loads them
    logs = {name: (run / "train.log").read_text() for name, run in runs.items()}
    assert "loading the text_encoder" in logs["cached"] and "loading the vae" in logs["cached"]
    assert "loading the text_encoder" not in logs["again"] and "loading the vae" not in logs["again"]
    assert "encoders: not loaded, the latent cache covers every clip" in logs["again"]
    assert all(re.search(r"peak memory: RSS [0-9.]+ GiB", text) for text in logs.values())


class _OneProcess:
    """What make_batches needs of an Accelerator, for one process on the CPU."""

    device = CPU
    is_main_process = is_local_main_process = True

    def wait_for_everyone(self) -> None:
        pass


def test_a_complete_cache_trains_without_the_encoders_in_memory(tmp_path, data, monkeypatch):
    _fresh_cache(tmp_path, monkeypatch)
    cfg = _cfg(data, cache_windows=8)  # 8 >= 5 windows: the live path draws the same window
    clips, fingerprint = load_clips(cfg, None)
    loads, real_load = [], cosmos.load_encoders
    monkeypatch.setattr(cosmos, "load_encoders", lambda pipe: (loads.append(pipe), real_load(pipe)))
    first = cosmos.load_pipeline("tiny", encoders=False)
    built = cache.make_batches(cfg, first, clips, fingerprint, _OneProcess())
    assert loads == [first] and not cosmos.encoders_loaded(first)  # loaded to fill the cache, dropped after
    second = cosmos.load_pipeline("tiny", encoders=False)
    again = cache.make_batches(cfg, second, clips, fingerprint, _OneProcess())
    assert loads == [first]
    assert second.text_encoder.device.type == "meta" and second.vae.device.type == "meta"
    assert sum(p.numel() for p in second.text_encoder.parameters() if p.device.type != "meta") == 0
    live = LiveBatches(cfg, _pipe(cfg), clips, CPU)
    for step in range(3):
        (clean, embeds), (clean0, embeds0) = again.get([step % len(clips)], step), built.get([step % len(clips)], step)
        assert torch.equal(clean, clean0), (clean - clean0).abs().max()
        assert torch.equal(embeds, embeds0), (embeds - embeds0).abs().max()
        torch.testing.assert_close(clean, live.get([step % len(clips)], step)[0], rtol=0, atol=1e-6)


def test_two_process_run_builds_once_and_trains_from_the_cache(tmp_path, data, monkeypatch):
    """Real 2-process DDP on CPU: the main process builds, the other waits, both train from the same files."""
    cfg = write_config(
        tmp_path / "c.json",
        tiny_config(data, tmp_path / "runs", name="ddp", max_steps=2, cache_windows=1, cache="auto"),
    )
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "COSMOS_STUDIO_CACHE": str(_fresh_cache(tmp_path, monkeypatch))}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "-m",
        "trainer",
        "train",
        "--config",
        str(cfg),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    events = read_events(tmp_path / "runs" / "ddp")
    start = next(e for e in events if e["event"] == "start")
    assert start["num_processes"] == 2
    caches = [e for e in events if e["event"] == "cache"]
    assert (caches[-1]["done"], caches[-1]["total"], caches[-1]["reused"]) == (4 + 4, 8, 0)
    done = events[-1]
    assert done["event"] == "done" and len(set(done["process_checksums"])) == 1
    model_dirs = list((tmp_path / "cache" / "latents").glob("*/model.json"))
    assert len(model_dirs) == 1 and json.loads(model_dirs[0].read_text())["format"] == cache.FORMAT
