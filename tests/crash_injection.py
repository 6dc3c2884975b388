"""Crash injection and checkpoint damage shared by the toy and the scaled reliability tests.

Importable as ``crash_injection`` from any test module: ``tests/conftest.py`` puts this folder on
``sys.path`` (pytest's default ``prepend`` import mode).
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import torch

# The warning CheckpointDir gives for each kind of damage (a regex).
DAMAGE_PROBLEM = {"truncated": "truncated or corrupt", "empty": r"empty \(0 bytes\)",
                  "foreign": "not an empg checkpoint"}


def damage_checkpoint(path: Path, how: str) -> None:
    """Damage a checkpoint file: ``truncated`` (half of it), ``empty`` or ``foreign`` (a torch file not from empg)."""
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "foreign":
        torch.save({"model": torch.zeros(3)}, path)
    else:
        raise ValueError(f"how must be one of {sorted(DAMAGE_PROBLEM)}, got {how!r}")


_KILLER = r"""
import os, signal, sys
from pathlib import Path
where, step = sys.argv[1], int(sys.argv[2])
name = f"step-{step:08d}.pt"
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if where in ("checkpoint_tmp", "optimizer_tmp"):  # the temporary file is complete, the rename has not happened
    folder = "checkpoints" if where == "checkpoint_tmp" else "optimizer"
    real_replace = os.replace
    def replace(src, dst):
        if Path(dst).name == name and Path(dst).parent.name == folder:
            die()
        return real_replace(src, dst)
    os.replace = replace
elif where == "checkpoint_cleanup":  # the new checkpoint is in place, the old one not yet deleted
    real_unlink = Path.unlink
    def unlink(self, *args, **kwargs):
        if self.name.startswith("step-") and self.parent.name == "checkpoints" and (self.parent / name).exists():
            die()
        return real_unlink(self, *args, **kwargs)
    Path.unlink = unlink
elif where == "metrics_row":  # the step's row is on disk, its checkpoint is not
    import empg.io
    real_write = empg.io.MetricsLog.write
    def write(self, row):
        real_write(self, row)
        if row.get(STEP_KEY) == step:
            die()
    empg.io.MetricsLog.write = write
"""


def killer_script(main_module: str, step_key: str, more_hooks: str = "") -> str:
    """Python source that runs ``main_module.main(argv[3:])`` and SIGKILLs itself at one point of the file writes.

    Run as ``python -c SCRIPT WHERE STEP ARGS...``: ``WHERE`` is ``checkpoint_tmp`` (the temporary file of
    the checkpoint of step ``STEP`` is complete, the rename has not happened), ``optimizer_tmp`` (the same
    for an ``optimizer/`` folder), ``checkpoint_cleanup`` (the new checkpoint is in place, the older one
    not yet deleted) or ``metrics_row`` (the metrics row whose ``step_key`` is ``STEP`` is written, its
    checkpoint is not). ``more_hooks``: further ``elif where == ...:`` branches (with ``where``, ``step``
    and ``die`` in scope).
    """
    return (f"STEP_KEY = {step_key!r}\n" + _KILLER + more_hooks
            + f"from {main_module} import main\nsys.exit(main(sys.argv[3:]))\n")


def kill_at_random_times(argv: list[str], *, out: Path, cwd: Path, env: dict, rng: random.Random, span: float,
                         low: float, n_kills: int, timeout: float) -> int:
    """Run ``argv``, SIGKILLed after a delay uniform over ``[low, 0.95] * span`` seconds, ``n_kills`` times, then
    to the end (asserting it exits 0); returns the kills made, at least one.

    A later kill may not land (a resumed run finishes first). If not even the first lands (this machine
    ran faster than when ``span`` was timed), the run folder ``out`` is removed and the whole sequence
    starts over with half the span.
    """
    kills = 0
    while True:
        # stderr goes to a file, not a pipe: a chatty run must not block on a full pipe while we wait
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
            if kills < n_kills:
                try:
                    proc.wait(timeout=rng.uniform(low, 0.95) * span)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    continue
            proc.wait(timeout=timeout)
            err.seek(0)
            assert proc.returncode == 0, err.read()[-3000:]
        if kills:
            return kills
        shutil.rmtree(out)  # finished before the first kill: start over, killing sooner
        span /= 2
