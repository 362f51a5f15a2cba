"""A LeRobot folder's meta and data files read (JSON, JSON lines, parquet), each failure one sentence that names
the file and the fix (trainer.lerobot turns them into clips)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


class LeRobotError(ValueError):
    """A LeRobot folder or option that cannot be used; one sentence naming the file or option and the fix."""

    def __init__(self, message: str, exit_code: int = 2):
        self.exit_code = exit_code
        super().__init__(message)


def episodes_table(root: Path, camera: str) -> pd.DataFrame:
    paths = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not paths:
        raise LeRobotError(f"{root / 'meta' / 'episodes'} holds no parquet file; the v3.0 dataset is incomplete.")
    video_columns = (f"videos/{camera}/{k}" for k in ("chunk_index", "file_index", "from_timestamp"))
    needed = ["episode_index", "length", *video_columns]
    parts = []
    for path in paths:
        present = parquet_columns(path)
        missing = [c for c in needed if c not in present]
        if missing:
            raise LeRobotError(f"{path} lacks the columns {', '.join(missing)}; the v3.0 dataset is incomplete.")
        parts.append(read_parquet(path, needed + (["tasks"] if "tasks" in present else [])))
    return pd.concat(parts, ignore_index=True)


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LeRobotError(f"{path} is missing; a LeRobot dataset folder holds meta/info.json.") from None
    except (OSError, ValueError) as exc:
        raise LeRobotError(f"{path} is not readable JSON ({exc}); fix or re-download it.") from None
    if not isinstance(data, dict):
        raise LeRobotError(f"{path} must hold a JSON object; fix or re-download it.")
    return data


def read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        raise LeRobotError(f"{path} is missing; the v2.x dataset is incomplete: re-download it.") from None
    except (OSError, ValueError) as exc:
        raise LeRobotError(f"{path} is not readable JSON lines ({exc}); fix or re-download it.") from None


def parquet_columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (OSError, ValueError) as exc:
        raise LeRobotError(f"{path} is not a readable parquet file ({exc}); re-download it.") from None


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, columns=columns)
    except FileNotFoundError:
        raise LeRobotError(f"{path} is missing; the dataset is incomplete: re-download it.") from None
    except (OSError, ValueError) as exc:
        raise LeRobotError(f"{path} is not a readable parquet file ({exc}); re-download it.") from None
