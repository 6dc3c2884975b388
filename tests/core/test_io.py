"""empg.io: atomic writes, checkpoint folders with fallback, metric logs; empg.metrics: the vocabulary."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

from empg import io as run_io
from empg.metrics import describe, unknown_metrics


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    run_io.atomic_write_bytes(target, b"one")
    run_io.atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_failure_keeps_old_content_and_removes_temp(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    run_io.atomic_write_bytes(target, b"old")

    def boom(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_io.os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        run_io.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        run_io.atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_checkpoint_dir_keeps_the_last_two_and_loads_the_newest(tmp_path):
    ckpt = run_io.CheckpointDir(tmp_path / "ck")
    assert ckpt.load_latest() is None
    for step in (1, 2, 3):
        ckpt.save(step, {"w": torch.full((2,), float(step))})
    assert ckpt.steps() == [2, 3]
    step, state = ckpt.load_latest()
    assert step == 3 and torch.equal(state["w"], torch.full((2,), 3.0))


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign", "garbage"])
def test_damaged_newest_checkpoint_falls_back_with_a_warning_naming_it(tmp_path, damage):
    ckpt = run_io.CheckpointDir(tmp_path)
    ckpt.save(4, {"w": 4})
    path = ckpt.save(5, {"w": 5})
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":
        torch.save({"model": 1}, path)
    else:
        path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(run_io.CheckpointError, match="step-00000005.pt"):
        run_io.load_checkpoint_file(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step, state = ckpt.load_latest()
    assert (step, state) == (4, {"w": 4})
    assert any("step-00000005.pt" in str(w.message) for w in caught)


def test_all_checkpoints_damaged_is_an_error_not_a_fresh_start(tmp_path):
    ckpt = run_io.CheckpointDir(tmp_path)
    ckpt.save(1, {"w": 1}).write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(run_io.CheckpointError, match="no usable checkpoint"):
            ckpt.load_latest()


def test_checkpoint_dir_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        run_io.CheckpointDir(tmp_path, keep=0)
    with pytest.raises(ValueError, match="step"):
        run_io.CheckpointDir(tmp_path).save(-1, {})


def test_check_writable_names_a_read_only_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OSError, match="ro"):
            run_io.check_writable(ro)
    finally:
        ro.chmod(0o700)


def test_check_writable_names_a_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError, match="file"):
        run_io.check_writable(f / "sub")


def test_metrics_log_appends_truncates_and_skips_a_torn_line(tmp_path):
    log = run_io.MetricsLog(tmp_path / "m.jsonl", step_key="iteration")
    for i in (1, 2, 3):
        log.write({"iteration": i, "charts/success_rate": i / 10})
    with open(log.path, "a") as fh:
        fh.write('{"iteration": 4, "charts/succ')  # a crash mid-write
    assert [r["iteration"] for r in log.read()] == [1, 2, 3]
    assert [r["iteration"] for r in log.truncate(2)] == [1, 2]
    assert [r["iteration"] for r in log.read()] == [1, 2]
    with pytest.raises(ValueError, match="iteration"):
        log.write({"charts/success_rate": 1.0})


def test_metric_vocabulary():
    assert describe("charts/success_rate")
    assert describe("success/pick_and_place_simple")  # pattern
    assert describe("empg/scale_max")
    assert unknown_metrics(["charts/success_rate", "losses/policy", "val/success_rate"]) == ["losses/policy"]
