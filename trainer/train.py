"""The training run, as named phases: load -> adapter -> data -> optimizer -> resume -> loop -> finalize.

Runs identically as one process or under `accelerate launch` with several: every process computes the same
data plan and its own share of each batch; only the main process writes files and events.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import math
import os
import signal
import time
import traceback
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs, set_seed

from trainer import adapters, cache, checkpoints, cosmos, samples, speed, trackers
from trainer.batches import load_clips
from trainer.data_plan import DataPlan, step_generator
from trainer.precision import peak_memory_line
from trainer.spec.config import TrainConfig, save_config
from trainer.spec.machine import Machine, config_problems_on
from trainer.spec.run_folder import ADAPTER_DIR, CONFIG_FILE, LOG_FILE, EventWriter, RunState, Status, write_status
from trainer.spec.schedules import lr_factor

log = logging.getLogger("trainer")
# Tracebacks go to train.log only: the console, status.json and the studio get the one-sentence message.
traceback_log = logging.getLogger("trainer.traceback")
# How long process-group setup and any collective may wait for the other processes: a rank that died or a port
# another run holds ends the run with a message instead of hanging it (COSMOS_DDP_TIMEOUT_S overrides).
DDP_TIMEOUT_S = float(os.environ.get("COSMOS_DDP_TIMEOUT_S", "600"))


class StopRequest:
    """SIGTERM/SIGINT ask the run to stop after the current step (checkpoint and adapter are still written)."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if not self.requested:
            log.info("received %s: stopping after this step", signal.Signals(signum).name)
        self.requested = True

    def agreed(self, accelerator: Accelerator) -> bool:
        """True on every process as soon as any process was asked to stop, so all stop at the same step."""
        flag = torch.tensor([1.0 if self.requested else 0.0], device=accelerator.device)
        return bool(accelerator.reduce(flag, "sum").item() > 0)


def run(cfg: TrainConfig, config_written: bool = False) -> int:
    """Train; returns the process exit code (0 finished or stopped, 1 failed).

    `config_written`: the run folder's config.json already holds `cfg` (the studio wrote it), so it is not
    written again; otherwise (a config file from elsewhere, or overrides) it is written here, once.
    """
    group_timeout = InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=DDP_TIMEOUT_S))
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        cpu=not torch.cuda.is_available(),
        kwargs_handlers=[group_timeout],
        **trackers.accelerator_kwargs(cfg),
    )
    main = accelerator.is_main_process
    run_dir = cfg.run_dir
    if main and not config_written:
        save_config(cfg, run_dir / CONFIG_FILE)
    accelerator.wait_for_everyone()
    _setup_logging(run_dir / LOG_FILE if main else None)
    events = EventWriter(run_dir, enabled=main)
    status = Status(state=RunState.RUNNING, pid=os.getpid())
    stop = StopRequest()
    if main:
        write_status(run_dir, status)
    try:
        return _train(cfg, accelerator, events, status, stop)
    except Exception as exc:  # every failure ends in status.json + an error event, never silently
        message = _user_message(exc, cfg)
        log.error("run failed: %s", message)
        traceback_log.error("%s", traceback.format_exc())
        if main:
            events.emit("error", message=message)
            status.state, status.error = RunState.FAILED, message
            write_status(run_dir, status)
        return 1


def _train(cfg: TrainConfig, accelerator: Accelerator, events: EventWriter, status: Status, stop: StopRequest) -> int:
    main, run_dir, device = accelerator.is_main_process, cfg.run_dir, accelerator.device
    torch.backends.cuda.matmul.allow_tf32 = cfg.allow_tf32
    torch.backends.cudnn.allow_tf32 = cfg.allow_tf32

    # --- check: the data and the clip size first, so a missing caption costs no model download (30 GB for 2B)
    gpu = torch.cuda.is_available()
    total = torch.cuda.get_device_properties(accelerator.device).total_memory / 2**30 if gpu else None
    problems = config_problems_on(cfg, Machine(gpu=gpu, memory_gib=total))
    if problems:
        raise ValueError(f"{problems[0]}.")
    clips, fingerprint = load_clips(cfg, run_dir if main else None)
    sample_prompts = samples.sample_prompts(cfg) if cfg.sample_every else []  # a missing first frame: refused now

    # --- load: the frozen pipeline, in the precision its forward passes will run in
    weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.mixed_precision, torch.float32)
    # With the latent cache the VAE and text encoder are loaded only if the cache misses entries (trainer.cache).
    log.info("loading %s", cfg.model)
    pipe = cosmos.load_pipeline(cfg.model, cfg.model_revision, dtype=weight_dtype, encoders=cfg.cache == "off")
    pipe.vae.requires_grad_(False)
    _, spatial_scale = cosmos.vae_scale_factors(pipe.vae)  # read before the cache may drop the VAE
    shape_problem = cosmos.video_shape_problem(pipe, cfg.height, cfg.width, cfg.num_frames)
    if shape_problem:
        raise ValueError(f"height: {shape_problem}.")
    pipe.text_encoder.requires_grad_(False)

    # --- adapter: peft draws the initial A matrices from the global RNG, so seed it (same on every process)
    set_seed(cfg.seed)
    lora_config = adapters.attach(pipe.transformer, cfg)
    speed.apply(pipe.transformer, cfg, device)  # attention kernel, checkpointing policy, regional compile
    params = adapters.trainable_parameters(pipe.transformer)
    log.info(
        "%s rank %d alpha %g: %d trainable parameters", cfg.adapter, cfg.rank, cfg.alpha, sum(p.numel() for p in params)
    )

    # --- data (its clips were checked above)
    plan = DataPlan(
        len(clips),
        accelerator.num_processes,
        accelerator.process_index,
        cfg.batch_size,
        cfg.gradient_accumulation,
        cfg.seed,
    )
    total = plan.total_steps(cfg.epochs, cfg.max_steps)
    sampler = samples.Sampler.prepare(cfg, pipe, accelerator, sample_prompts)  # before the cache drops encoders
    batches = cache.make_batches(cfg, pipe, clips, fingerprint, accelerator, events)

    # --- optimizer and schedule (length = this run's real number of steps)
    optimizer = speed.make_optimizer(params, cfg, device)
    factor = lr_factor(cfg.lr_scheduler, cfg.warmup_steps, cfg.f_max, cfg.f_min, total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    transformer, optimizer = accelerator.prepare(pipe.transformer, optimizer)

    # --- resume
    start = 0
    resume_from = checkpoints.find_resume_point(run_dir, cfg.resume)
    if resume_from is not None:
        state, saved = checkpoints.load(resume_from, optimizer, scheduler)
        adapters.load_adapter_state(accelerator.unwrap_model(transformer), state)
        start = saved["step"]
        log.info("resumed from %s at step %d", resume_from, start)
    elif cfg.resume and main:
        log.info("resume: no checkpoint yet in %s; starting at step 0", run_dir)

    events = trackers.start(accelerator, cfg, events)  # step events also go to report_to's tracker
    status.step, status.total = start, total
    if main:
        write_status(run_dir, status)
    events.emit(
        "start",
        run=cfg.name,
        total_steps=total,
        epochs=math.ceil(total / plan.steps_per_epoch),
        steps_per_epoch=plan.steps_per_epoch,
        clips=len(clips),
        num_processes=accelerator.num_processes,
        trainable_params=sum(p.numel() for p in params),
        resumed_from=start,
    )

    # --- loop (samples of the base first: the strip starts with "before training")
    if sampler and start == 0:
        sampler.render(0, events)
    loss_value, step = None, start
    transformer.train()
    while step < total and not stop.agreed(accelerator):
        step += 1
        t0 = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        loss_sum = torch.zeros((), device=device)
        for micro in range(cfg.gradient_accumulation):
            epoch, indices = plan.micro_batch(step, micro)
            clean, embeds = batches.get(indices, epoch)
            draw = cosmos.draw_flow_batch(
                clean.shape,
                cfg.conditional_frames,
                cfg.cfg_dropout,
                step_generator(cfg.seed, step, accelerator.process_index, micro),
            )
            last_micro = micro == cfg.gradient_accumulation - 1
            with accelerator.no_sync(transformer) if not last_micro else contextlib.nullcontext():
                with accelerator.autocast():
                    loss = cosmos.flow_matching_loss(
                        transformer, clean, embeds, draw, cfg.conditional_frame_timestep, spatial_scale=spatial_scale
                    )
                accelerator.backward(loss / cfg.gradient_accumulation)
            loss_sum += loss.detach() / cfg.gradient_accumulation
        # The norm before clipping is logged either way; max_norm inf measures without changing the gradients.
        grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        mean_loss = accelerator.reduce(loss_sum, "mean")
        cosmos.assert_finite(mean_loss, step)
        loss_value = float(mean_loss.item())
        events.emit(
            "step",
            step=step,
            epoch=epoch,
            loss=loss_value,
            lr=lr,
            grad_norm=float(grad_norm),
            step_time=round(time.perf_counter() - t0, 4),
        )
        status.step = step
        if main:
            write_status(run_dir, status)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
            _checkpoint(
                cfg,
                accelerator,
                transformer,
                optimizer,
                scheduler,
                step,
                events,
                (lora_config, pipe, fingerprint, loss_value),
            )
        if sampler and sampler.due(step, total):
            sampler.render(step, events)

    # --- finalize: a checkpoint of where we are, then the adapter and its card
    stopped = step < total
    if stopped or step > start:
        _checkpoint(
            cfg,
            accelerator,
            transformer,
            optimizer,
            scheduler,
            step,
            events,
            (lora_config, pipe, fingerprint, loss_value),
        )
    unwrapped = accelerator.unwrap_model(transformer)
    checksums = accelerator.gather(_adapter_checksum(unwrapped).to(device)).cpu().tolist()
    adapter_dir = run_dir / ADAPTER_DIR
    if main:
        base = cosmos.model_identity(cfg.model, cfg.model_revision, pipe.config._name_or_path)
        card = adapters.make_card(cfg, base, fingerprint, step, loss_value)
        adapters.save_adapter(adapter_dir, unwrapped, lora_config, card)
        status.state = RunState.STOPPED if stopped else RunState.FINISHED
        events.emit(
            "done",
            step=step,
            state=status.state.value,
            final_loss=loss_value,
            adapter=str(adapter_dir),
            process_checksums=checksums,
        )
        write_status(run_dir, status)
        log.info("%s at step %d/%d; adapter in %s", status.state.value, step, total, adapter_dir)
        log.info(peak_memory_line(device))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


def _checkpoint(cfg, accelerator, transformer, optimizer, scheduler, step, events, described) -> None:
    """Save the resumable state; `described` (LoRA config, pipeline, data fingerprint, last loss) makes its
    adapter loadable and carded like the final one, so the checkpoint can be compared as `run@step-N`."""
    if accelerator.is_main_process:
        lora_config, pipe, fingerprint, loss_value = described
        state = adapters.adapter_state(accelerator.unwrap_model(transformer))
        base = cosmos.model_identity(cfg.model, cfg.model_revision, pipe.config._name_or_path)
        card = adapters.make_card(cfg, base, fingerprint, step, loss_value)
        path = checkpoints.save(
            cfg.run_dir, step, state, optimizer, scheduler, {"run": cfg.name}, metadata=lora_config.to_dict(), card=card
        )
        checkpoints.prune(cfg.run_dir, cfg.keep_checkpoints)
        events.emit("checkpoint", step=step, path=str(path))
        log.info("checkpoint %s", path)
    accelerator.wait_for_everyone()


def _adapter_checksum(transformer) -> torch.Tensor:
    """A digest of this process's adapter weights, gathered at the end to show every process holds the same ones."""
    digest = hashlib.sha256()
    for name, tensor in sorted(adapters.adapter_state(transformer).items()):
        digest.update(name.encode())
        digest.update(tensor.float().numpy().tobytes())
    return torch.tensor([int(digest.hexdigest()[:12], 16)], dtype=torch.float64)


def _user_message(exc: Exception, cfg: TrainConfig) -> str:
    if isinstance(exc, torch.OutOfMemoryError):
        return (
            f"out of memory at {cfg.height}x{cfg.width}x{cfg.num_frames} frames, batch_size {cfg.batch_size}, "
            f"rank {cfg.rank}: lower height, width, num_frames or batch_size, or set gradient_checkpointing: true"
        )
    if isinstance(exc, (cosmos.ModelError, ValueError, FileNotFoundError, FloatingPointError)):
        return str(exc)
    if isinstance(exc, (torch.distributed.DistBackendError, TimeoutError)) or "timed out" in str(exc).lower():
        return (
            f"the training processes lost each other ({type(exc).__name__}) and gave up after "
            f"{DDP_TIMEOUT_S:g} s; check that every process is alive and run again"
        )
    return f"{type(exc).__name__}: {exc} (see train.log for the traceback)"


def _setup_logging(log_file: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    # Only the file: a rank without one (not the main process) keeps its traceback on its stderr.
    traceback_log.handlers = [handlers[-1]] if log_file is not None else [logging.StreamHandler()]
    traceback_log.propagate = False
