"""The scaled trainer survives crashes, damaged checkpoints, full disks and read-only folders (issue 14).

* ``python -m scaled.train --config scaled/configs/smoke_cpu.yaml`` SIGKILLed anywhere (at random moments,
  in the middle of a checkpoint write, between the rename and the clean-up, right after a metrics row)
  and started again with the *same* command gives the same metrics for every iteration and
  bit-identical final weights as an uninterrupted run (CPU, one thread; only ``perf/*`` wall-clock
  values are left out of the comparison).
* A truncated, empty or foreign newest checkpoint is skipped with a warning naming the file, the run
  falls back to the previous one and ends where an uninterrupted run ends; when every checkpoint is
  damaged, resuming stops with an error naming each file (never a silent restart).
* A full disk (``RLIMIT_FSIZE`` in the child, ``SIGXFSZ`` ignored so writes fail with ``EFBIG``) or a
  read-only folder is a clear error at start; a disk that fills up during a checkpoint write leaves no
  partial file behind.

The CLI runs in subprocesses with the smoke config, a tiny model and the games prebuilt once per test run.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from crash_injection import DAMAGE_PROBLEM, damage_checkpoint, kill_at_random_times, killer_script
from empg.io import CheckpointDir, MetricsLog

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "scaled" / "configs" / "smoke_cpu.yaml"
pytest.importorskip("alfworld")

# Runs the CLI with a crash injected: SIGKILL of the process itself at one point of the file writes
# (crash_injection.killer_script), or at a random "tick".
_KILLER = killer_script("scaled.train", "iteration", r"""
elif where == "tick":  # SIGKILL within 50 ms after the step-th "tick" (0: never; count them into $EMPG_TICKS)
    import atexit, random, threading, torch, empg.io, scaled.agent.episode
    count = [0]
    def tick():
        count[0] += 1
        if count[0] == step:
            threading.Timer(random.Random(step).uniform(0.0, 0.05), die).start()
    def hook(owner, name):
        real = getattr(owner, name)
        def wrapped(*args, **kwargs):
            tick()
            out = real(*args, **kwargs)
            tick()
            return out
        setattr(owner, name, wrapped)
    # env steps, optimizer steps, every file write (checkpoints, optimizer states, metrics rows, truncation)
    hook(scaled.agent.episode.Episode, "advance")
    hook(torch.optim.AdamW, "step")
    hook(empg.io, "atomic_write_bytes")
    hook(empg.io.MetricsLog, "write")
    if step == 0:
        atexit.register(lambda: open(os.environ["EMPG_TICKS"], "w").write(str(count[0])))
""")

# A child whose files may not grow past a limit: writes beyond it fail with EFBIG (SIGXFSZ ignored). With
# "start" the limit holds from the start; with "checkpoint" it is set when the first checkpoint is written
# (the disk fills up during training: ALFWorld copies its 34 MB planner library at every env creation).
_LIMITED = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
when, limit = sys.argv[1], int(sys.argv[2])
def fill_up():
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
if when == "start":
    fill_up()
else:
    import scaled.trainer
    real_save = scaled.trainer.Trainer.save_checkpoint
    def save_checkpoint(self):
        fill_up()
        return real_save(self)
    scaled.trainer.Trainer.save_checkpoint = save_checkpoint
from scaled.train import main
sys.exit(main(sys.argv[3:]))
"""

ITERATIONS = 3  # keep_checkpoints = 2: iteration 3 deletes a checkpoint; validation before training, at 2 and 3


def _env(cache: Path) -> dict:
    return dict(os.environ, EMPG_CACHE=str(cache), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TQDM_DISABLE="1",
                TOKENIZERS_PARALLELISM="false")


def _command(shared: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(SMOKE), f"trainer.out_dir={out}", f"model.path={shared / 'tiny'}",
            f"trainer.iterations={ITERATIONS}", *extra]


def _cli(shared: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scaled.train", *args], cwd=REPO, env=_env(shared / "cache"),
                          capture_output=True, text=True, timeout=timeout)


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows]


def _outcome(out: Path) -> tuple[list[dict], dict]:
    """(metrics rows, final trainable weights) of a finished run folder."""
    rows = MetricsLog(out / "metrics.jsonl", step_key="iteration").read()
    step, state = CheckpointDir(out / "checkpoints").load_latest()
    assert step == state["iteration"] == ITERATIONS
    return _comparable(rows), state["model"]


def _assert_same_run(out: Path, reference: dict) -> None:
    rows, weights = _outcome(out)
    assert [r["iteration"] for r in rows] == list(range(ITERATIONS + 1))  # every row exactly once (0: validation)
    assert rows == reference["rows"]
    assert weights.keys() == reference["weights"].keys()
    assert all(torch.equal(weights[k], reference["weights"][k]) for k in weights)  # bit-identical
    assert not list(out.rglob(".*.tmp"))  # no temporary file of an interrupted write is left behind


def _killer(shared: Path, where: str, at: int, command: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _KILLER, where, str(at), *command], cwd=REPO,
                          env={**_env(shared / "cache"), **env}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def reference(tmp_path_factory, worker_id) -> dict:
    """The uninterrupted run (same command, one go), computed once per test run (shared by the xdist workers).

    It runs under the tick counter of the random kills (instrumentation only), which records how many
    ticks a whole run has. Also prebuilds the tiny model and the ALFWorld game files.
    """
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent
    shared = root / "scaled_reliability"
    shared.mkdir(exist_ok=True)
    out = shared / "uninterrupted"
    with FileLock(str(shared / "reference.lock")):
        if not (out / "done.json").exists():
            t0 = time.perf_counter()
            p = _killer(shared, "tick", 0, _command(shared, out), EMPG_TICKS=str(shared / "ticks"))
            assert p.returncode == 0, p.stderr[-3000:]
            (out / "done.json").write_text(json.dumps({"seconds": time.perf_counter() - t0,
                                                       "ticks": int((shared / "ticks").read_text())}))
    rows, weights = _outcome(out)
    done = json.loads((out / "done.json").read_text())
    return {"rows": rows, "weights": weights, "shared": shared, "seconds": done["seconds"], "ticks": done["ticks"]}


def test_the_smoke_command_runs_end_to_end(reference):
    """The uninterrupted reference itself: every iteration once, validation rows, known metric names, checkpoints."""
    from empg.metrics import unknown_metrics

    rows = reference["rows"]
    assert [row["iteration"] for row in rows] == [0, 1, 2, 3]  # 0: validation before training
    assert all(unknown_metrics(row) == [] for row in rows)
    # validation (trainer.val_every=2, the last iteration, val_before_train) on eval.val_tasks=2 distinct tasks
    assert ["val/success_rate" in row for row in rows] == [True, False, True, True]
    assert all(row["val/num_tasks"] == 2.0 for row in rows if "val/num_tasks" in row)
    out = reference["shared"] / "uninterrupted"
    assert CheckpointDir(out / "checkpoints").steps() == [2, 3]  # keep_checkpoints = 2
    assert CheckpointDir(out / "checkpoints" / "optimizer").steps() == [3]  # save_optimizer = latest


# --------------------------------------------------------------------------- kill and resume
@pytest.mark.parametrize("where, iteration", [
    ("checkpoint_tmp", 2),
    pytest.param("optimizer_tmp", 1, marks=pytest.mark.slow),
    pytest.param("checkpoint_cleanup", 3, marks=pytest.mark.slow),
    pytest.param("metrics_row", 2, marks=pytest.mark.slow),
    pytest.param("metrics_row", 0, marks=pytest.mark.slow),  # after the validation row, before any checkpoint
])
def test_sigkill_during_a_write_then_the_same_command_resumes(tmp_path, reference, where, iteration):
    """SIGKILL inside the writes of iteration ``iteration``, then the same command again."""
    shared = reference["shared"]
    out = tmp_path / "run"
    command = _command(shared, out)
    p = _killer(shared, where, iteration, command)
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
    steps = CheckpointDir(out / "checkpoints").steps()
    if where == "checkpoint_tmp":  # the optimizer state of the new iteration is in place, its checkpoint is not
        assert steps == [iteration - 1] and list((out / "checkpoints").glob(".step-*.tmp"))
        assert CheckpointDir(out / "checkpoints" / "optimizer").steps() == [iteration - 1, iteration]
    elif where == "checkpoint_cleanup":
        assert steps == [iteration - 2, iteration - 1, iteration]  # renamed into place, the oldest not yet removed
    else:
        assert max(steps, default=0) == max(iteration - 1, 0)
    p = _cli(shared, *command)
    assert p.returncode == 0, p.stderr[-3000:]
    _assert_same_run(out, reference)


def _kill_at_random_ticks(shared: Path, command: list[str], ticks: int, seed: int, n_kills: int) -> int:
    """Run the command, SIGKILLed within 50 ms after a random tick, ``n_kills`` times, then to the end; returns
    the kills made.

    A tick is the start or the end of an env step, an optimizer step, an atomic file write or a metrics row
    (a whole run has ``ticks`` of them), so kills land anywhere in start-up, validation, rollouts, updates and
    writes whatever the machine's load. The first kill always lands; a later one may come after the resumed
    run has fewer ticks left, and then the run simply finishes.
    """
    rng = random.Random(seed)
    kills = 0
    while True:
        at = rng.randint(1, ticks) if kills < n_kills else 0
        p = _killer(shared, "tick", at, command, EMPG_TICKS=os.devnull)
        if p.returncode == -signal.SIGKILL:
            kills += 1
            continue
        assert p.returncode == 0, p.stderr[-3000:]
        return kills  # the run is complete (a resumed run may end before its random tick)


def test_sigkill_at_random_moments_then_resume(tmp_path, reference):
    out = tmp_path / "run"
    shared = reference["shared"]
    assert _kill_at_random_ticks(shared, _command(shared, out), reference["ticks"], seed=0, n_kills=2) >= 1
    _assert_same_run(out, reference)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_many_times_then_resume(tmp_path, reference, seed):
    out = tmp_path / "run"
    shared = reference["shared"]
    assert _kill_at_random_ticks(shared, _command(shared, out), reference["ticks"], seed=seed, n_kills=5) >= 1
    _assert_same_run(out, reference)


@pytest.mark.slow
def test_sigkill_at_random_wall_clock_times_then_resume(tmp_path, reference):
    """Kills after random delays (uniform over 25–95% of a run's wall time, measured again here so that the
    machine's load at the time counts), each followed by the same command."""
    shared = reference["shared"]
    t0 = time.perf_counter()
    assert _cli(shared, *_command(shared, tmp_path / "timing")).returncode == 0
    span = time.perf_counter() - t0
    out = tmp_path / "run"
    kill_at_random_times([sys.executable, "-m", "scaled.train", *_command(shared, out)], out=out, cwd=REPO,
                         env=_env(shared / "cache"), rng=random.Random(4), span=span, low=0.25, n_kills=3, timeout=300)
    _assert_same_run(out, reference)


# --------------------------------------------------------------------------- damaged checkpoints
def _small(tmp_path: Path, out: Path, *extra: str):
    from scaled.config import load_config

    return load_config(SMOKE, [f"model.path={tmp_path.parent / 'tiny_reliability'}", f"trainer.out_dir={out}",
                               "env.n_tasks=1", "env.group_size=2", "agent.max_steps=2", "rollout.max_new_tokens=6",
                               "optim.lr=1.0e-3", "trainer.val_every=0", "trainer.val_before_train=false",
                               "trainer.iterations=3", "trainer.save_optimizer=all", *extra])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, list[dict], dict]:
    """A finished 3-iteration run in process (small settings, save_optimizer=all): folder, rows, weights."""
    from scaled.trainer import Trainer

    out = tmp_path_factory.mktemp("small") / "run"
    trainer = Trainer(_small(out.parent, out))
    rows = trainer.train()
    trainer.close()
    return out, _comparable(rows), {k: v.clone() for k, v in trainer._trainable_state().items()}


@pytest.mark.parametrize("how", ["truncated", "empty", "foreign"])
def test_a_damaged_newest_checkpoint_falls_back_and_the_run_ends_as_an_uninterrupted_one(tmp_path, small_run, how):
    """A finished run with its newest checkpoint damaged, started again: the trainer warns naming the file and
    what is wrong, resumes at iteration 2 and redoes iteration 3 to the same metrics and bit-identical weights
    (save_optimizer=all: the older checkpoint has its optimizer state too)."""
    from scaled.trainer import Trainer

    folder, ref_rows, ref_weights = small_run
    out = tmp_path / "run"
    shutil.copytree(folder, out)
    newest = out / "checkpoints" / "step-00000003.pt"
    damage_checkpoint(newest, how)
    with pytest.warns(RuntimeWarning, match=f"{newest.name}' (is )?{DAMAGE_PROBLEM[how]}.*falling back"):
        trainer = Trainer(_small(folder.parent, out))
    assert trainer.iteration == 2
    rows = trainer.train()
    trainer.close()
    assert _comparable(rows) == ref_rows[2:]
    logged = _comparable(MetricsLog(out / "metrics.jsonl", step_key="iteration").read())
    assert logged == ref_rows  # rows 1, 2 kept, row 3 redone once
    weights = trainer._trainable_state()
    assert all(torch.equal(weights[k], ref_weights[k]) for k in ref_weights)


def test_every_checkpoint_damaged_is_an_error_naming_each_file(tmp_path, reference, capsys):
    from scaled.train import main

    shared = reference["shared"]
    out = tmp_path / "run"
    shutil.copytree(shared / "uninterrupted", out)
    folder = CheckpointDir(out / "checkpoints")
    damage_checkpoint(folder.path(2), "truncated")
    damage_checkpoint(folder.path(3), "foreign")
    with pytest.warns(RuntimeWarning), pytest.raises(SystemExit) as exit_:
        main(_command(shared, out))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "no usable checkpoint" in err
    assert "step-00000002.pt' is truncated or corrupt" in err and "step-00000003.pt' is not an empg checkpoint" in err
    assert "Traceback" not in err
    assert folder.path(2).exists() and (out / "metrics.jsonl").read_text()  # nothing was wiped


# --------------------------------------------------------------------------- full disk, read-only folder
def _limited(shared: Path, when: str, limit: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _LIMITED, when, str(limit), *args], cwd=REPO,
                          env=_env(shared / "cache"), capture_output=True, text=True, timeout=300)


def test_a_full_disk_is_an_error_at_start(tmp_path, reference):
    shared = reference["shared"]
    out = tmp_path / "run"
    p = _limited(shared, "start", 0, *_command(shared, out))
    assert p.returncode == 2, p.stderr[-3000:]
    assert f"trainer.out_dir '{out}' is not writable: File too large" in p.stderr and "Traceback" not in p.stderr
    assert not list(out.rglob("*"))  # nothing written, not even the write test


def test_a_disk_that_fills_up_during_a_checkpoint_leaves_no_partial_file(tmp_path, reference):
    shared = reference["shared"]
    # from the first checkpoint on, files up to 64 KB: the metrics rows fit, the checkpoint (~0.9 MB of AdamW
    # state, then ~0.45 MB of weights) does not
    for save_optimizer in ("latest", "all"):  # the optimizer state's file fails first / the checkpoint itself fails
        out = tmp_path / save_optimizer
        p = _limited(shared, "checkpoint", 64_000, *_command(shared, out, "trainer.iterations=1", "agent.max_steps=1",
                                                             "trainer.val_before_train=false",
                                                             f"trainer.save_optimizer={save_optimizer}"))
        assert p.returncode != 0
        assert "could not write the checkpoint of iteration 1" in p.stderr and "File too large" in p.stderr
        assert str(out / "checkpoints") in p.stderr
        assert not [f for f in out.rglob("*") if f.is_file() and f.name != "metrics.jsonl"]  # no partial or temp file
        assert [r["iteration"] for r in MetricsLog(out / "metrics.jsonl", step_key="iteration").read()] == [1]


@pytest.mark.slow
def test_after_a_full_disk_the_same_command_completes_the_run(tmp_path, reference):
    shared = reference["shared"]
    out = tmp_path / "run"
    assert _limited(shared, "checkpoint", 64_000, *_command(shared, out)).returncode != 0
    p = _cli(shared, *_command(shared, out))  # space freed: no checkpoint yet, the unfinished start is redone
    assert p.returncode == 0, p.stderr[-3000:]
    _assert_same_run(out, reference)


def _make_read_only(folder: Path) -> str:
    """Make ``folder`` read-only even for root (``chattr +i``); returns how, or skips when impossible."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        return "chmod"
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return "chattr"
    pytest.skip("cannot make a folder read-only for root here (no chattr +i)")


def test_a_read_only_output_folder_is_an_error_at_start(tmp_path, reference):
    from scaled.config import load_config
    from scaled.trainer import Trainer

    shared = reference["shared"]
    out = tmp_path / "ro"
    out.mkdir()
    how = _make_read_only(out)
    try:
        with pytest.raises(OSError, match=f"trainer.out_dir '{out}' is not writable"):
            Trainer(load_config(SMOKE, _command(shared, out)[2:]))
    finally:
        if how == "chattr":
            subprocess.run(["chattr", "-i", str(out)], check=True)
        else:
            out.chmod(0o700)
    assert not list(out.iterdir())


def test_too_little_free_space_for_one_checkpoint_is_an_error_at_start(tmp_path, reference, monkeypatch):
    import scaled.trainer
    from scaled.config import load_config
    from scaled.trainer import Trainer

    shared = reference["shared"]
    monkeypatch.setenv("EMPG_CACHE", str(shared / "cache"))
    real = shutil.disk_usage
    monkeypatch.setattr(scaled.trainer.shutil, "disk_usage", lambda p: real(p)._replace(free=100_000))
    with pytest.raises(OSError, match=r"trainer\.out_dir '.*' has 0\.00 GiB free, but one checkpoint needs"):
        Trainer(load_config(SMOKE, _command(shared, tmp_path / "small")[2:]))
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY  # the limit stayed in the child
