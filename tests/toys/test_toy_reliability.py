"""Crashes, damaged checkpoints and diagnostics: the toy trainer and the experiments' runner (issues 14, 15).

* A run SIGKILLed anywhere (at random moments, in the middle of a checkpoint write, between the
  rename and the clean-up, right after a metrics row) and started again with the *same* command
  gives the same metrics for every update and bit-identical final weights as an uninterrupted run.
* A truncated, empty or foreign newest checkpoint is skipped with a warning naming the file, the run
  falls back to the previous one and still ends where an uninterrupted run ends; when every
  checkpoint is damaged resuming stops with an error naming each file.
* Diagnostics (Prop. 1 records, TensorBoard, checkpoints, plots, the progress bar) never change a run.
* ``run_jobs``: a sweep killed part-way recomputes only the jobs that had not finished.

The CLI runs in subprocesses on ``toy_envs/KeyDoor-v0`` (small layout) with tiny budgets. Every run is
seeded, so "identical" means exactly equal (floats compared with ``==``, tensors with ``torch.equal``);
only ``charts/SPS`` (a wall-clock rate) is left out of the comparisons.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from crash_injection import DAMAGE_PROBLEM, damage_checkpoint, kill_at_random_times, killer_script
from empg.io import CheckpointDir, CheckpointError, MetricsLog

REPO = Path(__file__).resolve().parents[2]
gridworld = pytest.importorskip("toy_envs.gridworld")

# 6 updates of 2 tasks x 4 episodes, a checkpoint every update, DAPO + EMPG with the clipped loss (every
# random stream of the trainer is used: tasks, actions, refills, minibatch order) and Prop. 1 records.
RUN = ["--env", "toy_envs/KeyDoor-v0", "--env-kwargs", '{"layout": "small"}', "--method", "dapo_empg",
       "--loss", "clipped", "--epochs", "2", "--minibatches", "2", "--tasks-per-update", "2", "--group-size", "4",
       "--updates", "6", "--checkpoint-every", "1", "--prop1-every", "2", "--progress", "false", "--plot", "false"]

# Runs the CLI with a crash injected: SIGKILL of the process itself at one point of the file writes.
_KILLER = killer_script("toy_envs.train", "update")


def _env() -> dict:
    return dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", TQDM_DISABLE="1")


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toy_envs.train", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in rows]


def _outcome(out: Path) -> tuple[list[dict], dict, str]:
    """(metrics rows, final policy state, prop1.csv) of a finished run folder."""
    rows = MetricsLog(out / "metrics.jsonl", step_key="update").read()
    step, state = CheckpointDir(out / "checkpoints").load_latest()
    assert step == state["update"] == len(rows)
    return _comparable(rows), state["policy"], (out / "prop1.csv").read_text()


def _assert_same_run(out: Path, reference: tuple[list[dict], dict, str]) -> None:
    rows, policy, prop1 = _outcome(out)
    ref_rows, ref_policy, ref_prop1 = reference
    assert [r["update"] for r in rows] == list(range(1, len(ref_rows) + 1))  # every update exactly once
    assert rows == ref_rows
    assert policy.keys() == ref_policy.keys()
    assert all(torch.equal(policy[k], ref_policy[k]) for k in policy)  # bit-identical weights
    assert prop1 == ref_prop1
    assert not list(out.rglob(".*.tmp"))  # no temporary file of an interrupted write is left behind


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[list[dict], dict, str]:
    """The uninterrupted run (same command, one go); its wall time (start-up included) is ``reference.seconds``."""
    out = tmp_path_factory.mktemp("uninterrupted")
    t0 = time.perf_counter()
    p = _cli(*RUN, "--out", str(out), "--resume")
    assert p.returncode == 0, p.stderr
    _SECONDS["reference"] = time.perf_counter() - t0
    return _outcome(out)


_SECONDS: dict[str, float] = {}


@pytest.mark.parametrize("where, update", [
    ("checkpoint_tmp", 3),
    pytest.param("checkpoint_cleanup", 4, marks=pytest.mark.slow),
    pytest.param("metrics_row", 5, marks=pytest.mark.slow),
])
def test_sigkill_during_a_write_then_the_same_command_resumes(tmp_path, reference, where, update):
    """SIGKILL inside the write of update ``update`` (temp file written but not renamed; renamed but the
    old checkpoint not deleted; metrics row written but no checkpoint), then the same command again."""
    out = tmp_path / "run"
    command = [*RUN, "--out", str(out), "--resume"]
    p = subprocess.run([sys.executable, "-c", _KILLER, where, str(update), *command], cwd=REPO, env=_env(),
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == -signal.SIGKILL, p.stderr
    steps = CheckpointDir(out / "checkpoints").steps()
    assert steps and max(steps) in (update - 1, update)  # killed where intended
    if where == "checkpoint_tmp":
        assert list((out / "checkpoints").glob(".step-*.tmp"))  # the half-done write really is there
    if where == "checkpoint_cleanup":
        assert len(steps) == 3  # new checkpoint renamed into place, the oldest not yet removed
    p = _cli(*command)
    assert p.returncode == 0, p.stderr
    _assert_same_run(out, reference)


def _kill_at_random_moments(command: list[str], seed: int, n_kills: int) -> int:
    """Start ``command`` and SIGKILL it after random delays, ``n_kills`` times, then let it finish; returns the kills made.

    The delays are uniform over 20–95% of the uninterrupted run's wall time (start-up, rollouts, updates
    and writes all fall in that span), so the first kill always lands; a later one may come after a
    resumed run has already finished, which then simply ends the test.
    """
    rng = random.Random(seed)
    return kill_at_random_times([sys.executable, "-m", "toy_envs.train", *command],
                                out=Path(command[command.index("--out") + 1]), cwd=REPO, env=_env(), rng=rng,
                                span=_SECONDS["reference"], low=0.2, n_kills=n_kills, timeout=180)


def test_sigkill_at_random_moments_then_resume(tmp_path, reference):
    """Two kills at seeded random moments (during start-up, rollouts or writes), each followed by the same command."""
    out = tmp_path / "run"
    _kill_at_random_moments([*RUN, "--out", str(out), "--resume"], seed=0, n_kills=2)  # at least one kill lands
    _assert_same_run(out, reference)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_many_times_then_resume(tmp_path, reference, seed):
    out = tmp_path / "run"
    _kill_at_random_moments([*RUN, "--out", str(out), "--resume"], seed=seed, n_kills=5)  # at least one kill lands
    _assert_same_run(out, reference)


# --------------------------------------------------------------------------- damaged checkpoints


@pytest.mark.parametrize("how", ["truncated", "empty", "foreign"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, how):
    """Resume skips the damaged newest checkpoint with a warning naming it, continues from the one
    before, keeps the damaged file aside (``.damaged``) and ends exactly where an uninterrupted run ends."""
    from toy_envs.train import ToyTrainConfig, train

    def make_env():
        return gridworld.KeyDoorEnv("small")

    cfg = dict(tasks_per_update=2, group_size=4, progress=False, plot=False, checkpoint_every=1, prop1_every=2,
               outcome="dapo", empg="full", loss="clipped", epochs=2)
    full = train(ToyTrainConfig(updates=5, **cfg), make_env)
    train(ToyTrainConfig(updates=3, out=str(tmp_path), **cfg), make_env)
    newest = CheckpointDir(tmp_path / "checkpoints").path(3)
    damage_checkpoint(newest, how)
    with pytest.warns(RuntimeWarning, match=DAMAGE_PROBLEM[how]) as caught:
        resumed = train(ToyTrainConfig(updates=5, out=str(tmp_path), resume=True, **cfg), make_env)
    assert any(str(newest) in str(w.message) for w in caught)  # the warning names the file
    assert _comparable(resumed.history) == _comparable(full.history)
    assert torch.equal(resumed.policy.table, full.policy.table)
    assert resumed.prop1 == full.prop1
    assert (newest.parent / (newest.name + ".damaged")).exists()
    assert CheckpointDir(tmp_path / "checkpoints").steps() == [4, 5]
    rows = MetricsLog(tmp_path / "metrics.jsonl", step_key="update").read()
    assert _comparable(rows) == _comparable(full.history)


def test_every_checkpoint_damaged_is_an_error_naming_the_files(tmp_path):
    """No silent restart in a folder that holds a run: the CLI exits with status 2 and names each file."""
    out = tmp_path / "run"
    small = [*RUN[:RUN.index("--updates")], "--updates", "2", "--checkpoint-every", "1", "--progress", "false",
             "--plot", "false"]
    p = _cli(*small, "--out", str(out))
    assert p.returncode == 0, p.stderr
    checkpoints = CheckpointDir(out / "checkpoints")
    assert checkpoints.steps() == [1, 2]
    damage_checkpoint(checkpoints.path(2), "truncated")
    damage_checkpoint(checkpoints.path(1), "foreign")
    with pytest.raises(CheckpointError), pytest.warns(RuntimeWarning):
        checkpoints.load_latest()
    p = _cli("--out", str(out), "--resume", "--updates", "3")
    assert p.returncode == 2
    assert "step-00000002.pt" in p.stderr and "step-00000001.pt" in p.stderr and "no usable checkpoint" in p.stderr
    assert checkpoints.steps() == [1, 2]  # nothing was overwritten


def test_unwritable_output_folder_fails_at_start(tmp_path):
    """--out below a file (a folder that cannot be created, as on a read-only disk): a clear error naming it, no work done."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    p = _cli(*RUN, "--out", str(blocker / "run"))
    assert p.returncode == 2 and "not writable" in p.stderr and str(blocker / "run") in p.stderr
    assert blocker.read_text() == "not a folder"


# --------------------------------------------------------------------------- diagnostics never change a run


@pytest.mark.parametrize("diagnostic", ["prop1", "checkpoints", "plot", "progress", "tensorboard"])
def test_diagnostics_never_change_a_run(tmp_path, diagnostic):
    """Issue 15: the same run with and without each diagnostic logs the same metrics and ends with the same weights.

    (Before, the Prop. 1 probe drew its subsample from the training generator, which moved every later
    draw: with it on, a seed could collapse that learns without it.)
    """
    from toy_envs.train import ToyTrainConfig, train

    def make_env():
        return gridworld.KeyDoorEnv("small")

    base = dict(updates=6, tasks_per_update=2, group_size=4, progress=False, plot=False, outcome="dapo", empg="full",
                loss="clipped", epochs=2, minibatches=2, seed=3)
    on = {"prop1": dict(prop1_every=1, prop1_max_rows=7),
          "checkpoints": dict(out=str(tmp_path / "ck"), checkpoint_every=1),
          "plot": dict(out=str(tmp_path / "plot"), plot=True, checkpoint_every=0),
          "progress": dict(progress=True),
          "tensorboard": dict(out=str(tmp_path / "tb"), tensorboard=True)}[diagnostic]
    if diagnostic == "tensorboard":
        pytest.importorskip("tensorboard")
    plain = train(ToyTrainConfig(**base), make_env)
    with_it = train(ToyTrainConfig(**{**base, **on}), make_env)
    assert _comparable(with_it.history) == _comparable(plain.history)
    assert torch.equal(with_it.policy.table, plain.policy.table)
    if diagnostic == "prop1":
        assert len(with_it.prop1) == 6 * 7 and plain.prop1 == []  # the diagnostic did record
    if diagnostic == "tensorboard":
        assert list((tmp_path / "tb" / "tb").iterdir())


# --------------------------------------------------------------------------- the experiments' runner


def _square(job: dict) -> dict:
    """A job that records each call (to count recomputations) and stops the sweep where a flag file says."""
    folder = Path(job["folder"])
    with open(folder / "calls.txt", "a") as fh:
        fh.write(f"{job['x']}\n")
    crash = folder / "crash_at"
    if crash.exists() and int(crash.read_text()) == job["x"]:
        raise KeyboardInterrupt  # stands in for a kill: the sweep stops at this job
    return {"x": job["x"], "square": job["x"] ** 2, "curve": [0.1 * job["x"], float("nan")]}


def test_run_jobs_resumes_without_recomputing_finished_jobs(tmp_path):
    from toy_envs.experiments._common import run_jobs

    calls = tmp_path / "calls.txt"
    jobs = [{"x": x, "folder": str(tmp_path)} for x in range(5)]
    (tmp_path / "crash_at").write_text("3")
    with pytest.raises(KeyboardInterrupt):
        run_jobs(_square, jobs, workers=1, cache=tmp_path / "jobs")
    assert calls.read_text().split() == ["0", "1", "2", "3"]
    (tmp_path / "crash_at").unlink()
    calls.unlink()
    results = run_jobs(_square, jobs, workers=1, cache=tmp_path / "jobs")
    assert calls.read_text().split() == ["3", "4"]  # only the jobs that had not finished
    calls.unlink()
    fresh = run_jobs(_square, jobs, workers=1)  # no cache: everything computed
    assert calls.read_text().split() == ["0", "1", "2", "3", "4"]
    assert json.dumps(results) == json.dumps(fresh)  # reused results read back exactly (NaN included)
    assert [r["square"] for r in results] == [0, 1, 4, 9, 16]
    # a damaged result file is reported and recomputed; another job (other spec) is never reused
    files = sorted((tmp_path / "jobs").glob("job-*.json"))
    assert len(files) == 5
    victim = next(f for f in files if json.loads(f.read_text())["job"] == jobs[4])
    victim.write_text(victim.read_text()[:20])
    calls.unlink()
    with pytest.warns(RuntimeWarning, match=victim.name):
        again = run_jobs(_square, [*jobs, {"x": 7, "folder": str(tmp_path)}], workers=1, cache=tmp_path / "jobs")
    assert calls.read_text().split() == ["4", "7"] and json.dumps(again[:5]) == json.dumps(fresh)


@pytest.mark.slow
def test_killed_demo_resumes_without_recomputing(tmp_path):
    """SIGKILL ``python -m toy_envs.demo --quick`` once two runs have finished; the same command then runs only
    the rest, and results.json equals an uninterrupted demo's (apart from wall times)."""
    def demo(out: Path) -> list[str]:
        return [sys.executable, "-m", "toy_envs.demo", "--quick", "--out", str(out), "--seeds", "3", "--workers", "2"]

    ref = tmp_path / "ref"
    assert subprocess.run(demo(ref), cwd=REPO, env=_env(), capture_output=True, timeout=300).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(demo(out), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while len(list((out / "jobs").glob("job-*.json"))) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the demo and its worker processes
    proc.wait()
    done = len(list((out / "jobs").glob("job-*.json")))
    assert 2 <= done < 6
    p = subprocess.run(demo(out), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"{done} of 6 runs reused" in p.stdout

    def strip(report: dict) -> dict:
        for m in report["methods"].values():
            m.pop("run_wall_time_s")
        report.pop("wall_time_s")
        return report

    assert strip(json.loads((out / "results.json").read_text())) == strip(json.loads((ref / "results.json").read_text()))
