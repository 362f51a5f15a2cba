"""`python -m trainer.worker`: the studio's long-lived generation process.

It keeps one Renderer (pipeline + loaded adapters) between requests, so only the first request pays for
loading the model. Protocol, one JSON object per line:

    stdin   {"id": ..., <GenerateRequest fields: prompt, out_dir, image or video, GenerateSettings' fields>}
            with "adapters": [{"path": DIR, "scale": 1.0}, ...]; a setting left out takes the value of the
            model's preset (generate_settings.preset_for), as on the command line
    stdout  {"id": ..., "event": "progress", "variant": NAME, "step": N, "total": STEPS}
            {"id": ..., "event": "done", "record": <compare.json>, "out_dir": DIR}
            {"id": ..., "event": "error", "message": "one sentence"}

A failed request is answered with an error event and the worker waits for the next one; it exits when stdin
closes. Everything else the libraries print goes to stderr, never into the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import fields
from typing import Any, TextIO

WORKER_FIELDS = ("id",)


def parse_request(raw: dict[str, Any]):
    """The GenerateRequest of one request line; ValueError names every bad key."""
    from trainer.generate import AdapterChoice, GenerateRequest
    from trainer.spec.generate_settings import field_defaults, preset_for, preset_values, type_problems

    known = {f.name for f in fields(GenerateRequest)}
    unknown = sorted(set(raw) - known - set(WORKER_FIELDS))
    if unknown:
        raise ValueError(f"unknown request keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    model = str(raw.get("model") or field_defaults()["model"])
    args = preset_values(preset_for(model), model) | {k: v for k, v in raw.items() if k in known} | {"model": model}
    problems = type_problems(args)
    if problems:
        raise ValueError("; ".join(map(str, problems)))
    try:
        args["adapters"] = [AdapterChoice(str(a["path"]), float(a.get("scale", 1.0))) for a in raw.get("adapters", [])]
        return GenerateRequest(**args)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"malformed request ({exc}); adapters are objects with a path and a scale") from None


def _bound_problems(request) -> list:
    """The size budget of this machine (steps and each setting's own bounds are GenerateSettings')."""
    import torch

    from trainer.spec.bounds import generation_size_problem
    from trainer.spec.config import Problem

    size = generation_size_problem(request.height, request.width, request.num_frames, torch.cuda.is_available())
    return [Problem("height", size)] if size else []


class Worker:
    def __init__(self, out: TextIO):
        self.out = out
        self.renderer = None
        self.renderer_key: tuple | None = None

    def emit(self, request_id: Any, event: str, **payload: Any) -> None:
        from trainer.spec.run_folder import WORKER_EVENTS

        assert event in WORKER_EVENTS and payload.keys() == WORKER_EVENTS[event].keys(), event
        self.out.write(json.dumps({"id": request_id, "event": event, **payload}) + "\n")
        self.out.flush()

    def handle(self, line: str) -> None:
        request_id = None
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise ValueError("a request must be a JSON object")
            request_id = raw.get("id")
            request = parse_request(raw)
            problems = request.problems() + _bound_problems(request)
            if problems:
                raise ValueError("; ".join(map(str, problems)))
            renderer = self._renderer(request.model, request.revision or None, request.guardrail, request.precision)

            def progress(variant: str, step: int, total: int) -> None:
                self.emit(request_id, "progress", variant=variant, step=step, total=total)

            record = renderer.render(request, progress)
            self.emit(request_id, "done", record=record, out_dir=request.out_dir)
            from trainer.precision import peak_memory_line

            print(peak_memory_line(renderer.device), file=sys.stderr, flush=True)  # the worker log, not the protocol
        except Exception as exc:  # the worker outlives a bad request; the traceback goes to its log
            traceback.print_exc(file=sys.stderr)
            self.emit(request_id, "error", message=_message(exc))

    def _renderer(self, model: str, revision: str | None, guardrail: bool, precision: str):
        from trainer.generate import Renderer

        key = (model, revision, guardrail, precision)
        if self.renderer_key != key:
            self.renderer = None  # free the previous pipeline before loading another
            self.renderer = Renderer(model, revision, guardrail=guardrail, precision=precision)
            self.renderer_key = key
        return self.renderer


def _message(exc: Exception) -> str:
    from trainer.cosmos import ModelError
    from trainer.video import VideoError

    if isinstance(exc, json.JSONDecodeError):
        return f"the request is not valid JSON ({exc.msg})"
    if isinstance(exc, (ModelError, VideoError, ValueError)):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename or 'a file'}: {exc.strerror or exc}; check the path and free disk space"
    return f"generation failed ({type(exc).__name__}: {exc}); see the worker log"


def main() -> int:
    # The protocol gets its own copy of stdout; fd 1 then points at stderr, so a library's print() cannot
    # corrupt a JSON line.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    worker = Worker(out)
    for line in sys.stdin:
        if line.strip():
            worker.handle(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
