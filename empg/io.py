"""Run files shared by every trainer: atomic writes, checkpoints that survive a crash, metric logs.

Standard library and torch only. The toy trainer (:mod:`toy_envs.train`), the scaled trainer
(:mod:`scaled.trainer`) and the experiment runners write through these functions, so a crash at any
moment leaves either the old file or the new one, never half of one:

* :func:`atomic_write_bytes` writes a temporary file in the target's folder, ``fsync`` s it, renames it
  over the target (``os.replace``, atomic on POSIX) and ``fsync`` s the folder, so the rename itself
  survives a power cut. On any error the temporary file is removed.
* :class:`CheckpointDir` keeps the last ``keep`` checkpoints (``step-00000012.pt`` …). Loading checks
  each file (size, torch format, a format marker) and falls back to the previous good one with a
  warning naming the damaged file; when every checkpoint of a run folder is damaged it raises
  :class:`CheckpointError` instead of silently starting over.
* :class:`MetricsLog` appends one JSON object per line (``metrics.jsonl``), can cut the log back to
  a checkpoint's step on resume, and mirrors scalars to TensorBoard when asked (imported lazily).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointDir",
    "CheckpointError",
    "MetricsLog",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "check_writable",
    "load_checkpoint_file",
]

#: Marker stored in every checkpoint written here; a file without it is "foreign".
CHECKPOINT_FORMAT = "empg-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, empty or not one of ours (the message names the file)."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename, fsync the folder.

    Readers see the old content or the new one, never a mix. The file gets the usual permissions
    (0666 minus the umask), not the 0600 of ``mkstemp``. Creates missing parent folders.

    Raises:
        OSError: the folder is not writable or the disk is full; the temporary file is removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 1) -> Path:
    """``data`` as JSON (NaN refused: it is not JSON), written with :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, json.dumps(data, indent=indent, allow_nan=False).encode())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save(obj)`` into memory, then :func:`atomic_write_bytes` (a crash never leaves half a file)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def check_writable(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove that a file can be written, synced and removed there.

    Trainers call this at start, so that a read-only or full disk fails before any work is done.

    Raises:
        OSError: with a message naming ``folder`` and the cause.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / ".write-test", b"ok")
        (folder / ".write-test").unlink()
    except OSError as err:
        raise OSError(err.errno, f"{what} {str(folder)!r} is not writable: {err.strerror or err}") from err
    return folder


def load_checkpoint_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :meth:`CheckpointDir.save` and check that it is whole and ours.

    Returns:
        The saved state dict (the ``"state"`` entry of the file).

    Raises:
        CheckpointError: the file is missing, empty, truncated or corrupt, or was not written by empg
            (no :data:`CHECKPOINT_FORMAT` marker); the message names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # zip/pickle errors of every kind: truncated or corrupt
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt ({size} bytes): "
                              f"{type(err).__name__}: {err}") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT or "state" not in blob:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} is not an empg checkpoint "
                              f"(format marker {found!r}, expected {CHECKPOINT_FORMAT!r})")
    return blob["state"]


class CheckpointDir:
    """The checkpoints of one run: ``folder/step-{step:08d}.pt``, the newest ``keep`` of them.

    Args:
        folder: where the checkpoints live (created on the first save).
        keep: how many to keep (≥ 1; default 2, so a checkpoint damaged after it was written still
            leaves a good one to fall back to).
    """

    _NAME = re.compile(r"^step-(\d+)\.pt$")

    def __init__(self, folder: str | os.PathLike, keep: int = 2) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an int >= 1, got {keep!r}")
        self.folder = Path(folder)
        self.keep = keep

    def path(self, step: int) -> Path:
        return self.folder / f"step-{int(step):08d}.pt"

    def steps(self) -> list[int]:
        """Steps that have a checkpoint file, ascending (temporary files are ignored)."""
        if not self.folder.is_dir():
            return []
        out = []
        for p in self.folder.iterdir():
            m = self._NAME.match(p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write ``state`` for ``step`` atomically, then delete all but the newest ``keep`` checkpoints."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        path = atomic_torch_save(self.path(step), {"format": CHECKPOINT_FORMAT, "step": step, "state": state})
        for old in self.steps()[: -self.keep]:
            try:
                self.path(old).unlink()
            except FileNotFoundError:  # pragma: no cover - removed concurrently
                pass
        return path

    def load_latest(self) -> tuple[int, dict[str, Any]] | None:
        """The newest checkpoint that loads, as ``(step, state)``; ``None`` when the folder holds none.

        A damaged newer checkpoint is skipped with a ``RuntimeWarning`` that names it and says why.

        Raises:
            CheckpointError: checkpoints exist but none of them loads (the message lists each file
                and its problem). A run folder is never silently started over.
        """
        problems = []
        for step in reversed(self.steps()):
            try:
                state = load_checkpoint_file(self.path(step))
            except CheckpointError as err:
                problems.append(str(err))
                warnings.warn(f"{err}; falling back to an older checkpoint", RuntimeWarning, stacklevel=2)
                continue
            return step, state
        if problems:
            raise CheckpointError("no usable checkpoint in " + repr(str(self.folder)) + ": " + "; ".join(problems))
        return None


class MetricsLog:
    """Per-step metrics as JSON lines (``path``), optionally mirrored to TensorBoard.

    Args:
        path: the ``.jsonl`` file (created when the first row is written).
        step_key: the key that orders rows (``"update"`` for the toy trainer, ``"iteration"`` for the
            scaled one).
        tensorboard: a folder for TensorBoard event files, or None.
    """

    def __init__(self, path: str | os.PathLike, *, step_key: str = "step",
                 tensorboard: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.step_key = step_key
        self._tb_dir = Path(tensorboard) if tensorboard is not None else None
        self._tb = None

    def read(self) -> list[dict[str, Any]]:
        """Every row written so far (a torn last line, from a crash mid-write, is ignored)."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate(self, step: int) -> list[dict[str, Any]]:
        """Keep only the rows with ``step_key <= step`` (atomic rewrite); returns them.

        On resume from the checkpoint of ``step`` this drops the rows of iterations that ran after it
        and will run again.
        """
        keep = [row for row in self.read() if row.get(self.step_key, 0) <= step]
        if self.path.exists() or keep:
            atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in keep).encode())
        return keep

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (flushed and synced) and mirror its numbers to TensorBoard."""
        if self.step_key not in row:
            raise ValueError(f"row must hold the step key {self.step_key!r}, got keys {sorted(row)[:8]}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if self._tb_dir is not None:
            step = int(row[self.step_key])
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter  # optional dependency: tensorboard

                self._tb = SummaryWriter(str(self._tb_dir), purge_step=step)
            for key, value in _scalars(row):
                if key != self.step_key:
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _scalars(row: dict[str, Any]) -> Iterable[tuple[str, float]]:
    for key, value in row.items():
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            yield key, float(value)
