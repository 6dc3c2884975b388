"""The token kernels (empg._kernels): numpy and torch paths agree, and the torch path (what runs on a
GPU) synchronises with the host a fixed number of times per call, whatever the number of steps."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import empg
from empg import _kernels

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_modulation  # noqa: E402

START, END = bench_modulation.START, bench_modulation.END


@pytest.fixture(params=["numpy", "torch"])
def backend(request, monkeypatch):
    monkeypatch.setattr(_kernels, "NUMPY_ON_CPU", request.param == "numpy")
    return request.param


def _both(monkeypatch, fn):
    """``fn()`` with the numpy kernels, then with the torch kernels."""
    out = []
    for flag in (True, False):
        monkeypatch.setattr(_kernels, "NUMPY_ON_CPU", flag)
        out.append(fn())
    return out


def test_kernels_agree(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(-1, 3, (5, 40), generator=gen).repeat_interleave(3, dim=1)  # runs of 3+
    flat = ids.reshape(-1)
    x = torch.rand(flat.shape[0], generator=gen)
    x[7] = float("nan")  # stays in its own segment
    keep = torch.rand(flat.shape[0], generator=gen) > 0.2
    a, b = _both(monkeypatch, lambda: _kernels.runs(flat, 120))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    start, length, value = a
    assert start[0] == 0 and (length > 0).all() and length.sum() == flat.shape[0]
    assert set(range(0, 600, 120)) <= set(start.tolist())  # a new run at every row
    np.testing.assert_array_equal(value, flat.numpy()[start])
    for reduce, data in (("sum", x), ("min", x), ("any", keep), ("all", keep)):
        u, v = _both(monkeypatch, lambda: _kernels.segment_reduce(data, start, reduce))
        np.testing.assert_allclose(u, v, rtol=1e-6)
        expected = [getattr(np, {"sum": "sum", "min": "min", "any": "any", "all": "all"}[reduce])(data.numpy()[s : s + n])
                    for s, n in zip(start, length)]
        np.testing.assert_allclose(u, expected, rtol=1e-6)
    (pos_u, tok_u), (pos_v, tok_v) = _both(monkeypatch, lambda: _kernels.equal_positions(flat, [2, 0]))
    np.testing.assert_array_equal(pos_u, pos_v)
    np.testing.assert_array_equal(tok_u, tok_v)
    np.testing.assert_array_equal(pos_u, np.flatnonzero((flat.numpy() == 2) | (flat.numpy() == 0)))
    np.testing.assert_array_equal(tok_u, flat.numpy()[pos_u])
    scale, shift = np.random.default_rng(0).random((2, start.shape[0]), dtype=np.float32)
    u, v = _both(monkeypatch, lambda: _kernels.affine_runs(x, scale, shift, length))
    torch.testing.assert_close(u, v, equal_nan=True)
    torch.testing.assert_close(u, x * torch.from_numpy(np.repeat(scale, length)) + torch.from_numpy(np.repeat(shift, length)),
                               equal_nan=True)
    u, v = _both(monkeypatch, lambda: _kernels.fill_where_not_(flat.clone(), keep, -7))
    assert torch.equal(u, v) and torch.equal(u, torch.where(keep, flat, -7))
    assert _both(monkeypatch, lambda: _kernels.minimum(x)) == [pytest.approx(float("nan"), nan_ok=True)] * 2


def test_core_agrees_across_backends(monkeypatch):
    token_ids, mask, adv, ent, _ = bench_modulation.make_batch(rows=6, length=4096, seed=4)

    def run():
        ids = empg.step_ids_from_delimiters(token_ids, start=START, end=END, mask=mask, truncated="drop")
        out, terms = empg.modulate_advantages(adv, ent, ids, return_terms=True)
        h, row, step = empg.step_entropies(ent, ids)
        rows = empg.modulate_step_advantages(terms.advantage, h, row, step)
        return ids, out, terms.token_step, h, rows

    a, b = _both(monkeypatch, run)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-6)


# --- host synchronisations of the torch path ------------------------------------------------------

#: Every way the torch path can wait for a device: reads of values, data-dependent sizes, uploads.
_TENSOR_READS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__")


@pytest.fixture
def count_syncs(monkeypatch):
    monkeypatch.setattr(_kernels, "NUMPY_ON_CPU", False)  # what runs on a GPU
    counts = collections.Counter()

    def counting(owner, name, label):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            counts[label] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for module in (_kernels, empg._steps, empg._delimiters, empg.modulation, empg.entropy):
        for name in ("to_host", "to_device"):
            if hasattr(module, name):
                counting(module, name, name)
    counting(torch, "nonzero", "nonzero")
    return counts, counting


def _batch(n_steps: int):
    """One row per trajectory, ``n_steps`` steps in all (rows of up to 10 turns)."""
    rows = []
    for r in range(0, n_steps, 10):
        turns = min(10, n_steps - r)
        row = [7, 8]
        for t in range(turns):
            row += START + [100 + t, 101, 102] + END + [9, 9]
        rows.append(row)
    length = max(map(len, rows)) + 3
    token_ids = torch.tensor([row + [0] * (length - len(row)) for row in rows])
    mask = token_ids != 0
    gen = torch.Generator().manual_seed(n_steps)
    adv = torch.randn(len(rows), 1, generator=gen).expand(len(rows), length).contiguous()
    return token_ids, mask, adv, torch.rand(token_ids.shape, generator=gen)


@pytest.mark.parametrize("what", ["step_ids_from_delimiters", "modulate_advantages", "modulate_step_advantages"])
def test_host_synchronisations_do_not_grow_with_the_steps(what, count_syncs):
    counts, _ = count_syncs
    seen = []
    for n_steps in (3, 300):
        token_ids, mask, adv, ent = _batch(n_steps)
        ids = empg.step_ids_from_delimiters(token_ids, start=START, end=END, mask=mask)
        assert int(ids.max()) + 1 == min(n_steps, 10)
        h, row, step = empg.step_entropies(ent, ids)
        counts.clear()
        reads = collections.Counter()
        with _counting_tensor_reads(reads):
            if what == "step_ids_from_delimiters":
                empg.step_ids_from_delimiters(token_ids, start=START, end=END, mask=mask)
            elif what == "modulate_advantages":
                empg.modulate_advantages(adv, ent, ids)
            else:
                empg.modulate_step_advantages(torch.rand(h.shape), h, row, step)
        seen.append((dict(counts), dict(reads)))
    assert seen[0] == seen[1], seen  # the same, for 3 and for 300 steps
    syncs = sum(seen[0][0].values())
    assert syncs == SYNCS[what], seen[0]  # the documented count (docs/benchmarks.md)
    assert seen[0][1] == {}, seen[0]  # no stray .item()/.tolist()/bool()/int()/float() on a tensor


#: Host synchronisations per call of the torch path (what a GPU sees), documented in docs/benchmarks.md.
SYNCS = {"step_ids_from_delimiters": 9, "modulate_advantages": 5, "modulate_step_advantages": 3}


class _counting_tensor_reads:
    """Count .item()/.tolist()/bool()/int()/float()/index()/.numpy() on tensors while active."""

    def __init__(self, counter):
        self.counter, self.saved = counter, {}

    def __enter__(self):
        for name in _TENSOR_READS:
            real = getattr(torch.Tensor, name)
            self.saved[name] = real

            def wrapper(t, *args, _real=real, _name=name, **kwargs):
                self.counter[_name] += 1
                return _real(t, *args, **kwargs)

            setattr(torch.Tensor, name, wrapper)
        return self

    def __exit__(self, *exc):
        for name, real in self.saved.items():
            setattr(torch.Tensor, name, real)


def test_torch_path_matches_the_references_on_random_batches(monkeypatch):
    # The torch kernels (what a GPU runs) against the loop references, on small random batches with
    # every option: masks with holes, a step open at the row start, dropped truncated steps.
    from empg import reference

    monkeypatch.setattr(_kernels, "NUMPY_ON_CPU", False)
    gen = torch.Generator().manual_seed(5)
    for case in range(40):
        b, length = int(torch.randint(1, 4, (1,), generator=gen)), int(torch.randint(1, 30, (1,), generator=gen))
        toks = torch.randint(0, 6, (b, length), generator=gen)
        mask = torch.rand(b, length, generator=gen) > 0.15
        kw = dict(start=[1, 2], end=[3], mask=mask if case % 2 else None, first_step_open=case % 3 == 0,
                  truncated="drop" if case % 4 == 1 else "keep")
        ids = empg.step_ids_from_delimiters(toks, **kw)
        assert ids.tolist() == reference.step_ids_from_delimiters_ref(toks, **kw).tolist(), case
        adv = torch.randn(b, length, generator=gen, dtype=torch.float64)
        ent = torch.rand(b, length, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(empg.modulate_advantages(adv, ent, ids, zeta=0.3),
                                   reference.modulate_advantages_ref(adv, ent, ids, zeta=0.3), rtol=0, atol=1e-12)


@pytest.mark.parametrize("block", [7, 64, 1 << 17])
def test_float64_sums_block_by_block(monkeypatch, block):
    # The float64 segment sums cast one block at a time (no float64 copy of the input); blocks cut at
    # segment starts, segments longer than a block, and a single block all give the exact float64 sums.
    monkeypatch.setattr(_kernels, "BLOCK", block)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(5000, generator=gen) * 3).float()
    starts = np.unique(np.concatenate([[0], torch.randint(1, 5000, (40,), generator=gen).numpy(), [1000, 1001]]))
    expected = np.add.reduceat(x.numpy().astype(np.float64), starts)
    np.testing.assert_allclose(_kernels.segment_reduce(x, starts, float64=True), expected, rtol=1e-13, atol=0)
    adv = torch.randn(5000, generator=gen)
    sums, low = _kernels.run_sums_and_min(x, adv, starts)
    np.testing.assert_allclose(sums[0], expected, rtol=1e-13, atol=0)
    np.testing.assert_allclose(sums[1], np.add.reduceat(adv.numpy().astype(np.float64), starts), rtol=1e-5, atol=1e-4)
    assert low == float(x.min())
    x[4321] = float("nan")  # the minimum propagates NaN
    assert np.isnan(_kernels.run_sums_and_min(x, adv, starts)[1])
