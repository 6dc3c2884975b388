"""verl 0.9.1's own actor worker and V1 trainer steps, end to end on CPU, with the EMPG plug-in.

Run by ``tests/verl/test_worker_cpu.py`` in a fresh interpreter (the CPU platform must be chosen
before verl is imported): ``python tests/verl/worker_e2e.py OUT_DIR``. It writes ``OUT_DIR/result.pt``
with what the test checks; it asserts nothing itself beyond "the pipeline ran".

What runs, all verl's own code except the two stand-ins named below:

1. a tiny random-init Qwen2 (``scaled.tiny``), fp32, ``ActorRolloutRefWorker(role="actor")`` on FSDP2
   with a single-process gloo group (``cpu_platform.py`` explains the shim);
2. generation with verl's ``HFRollout`` on the worker's FSDP module (stand-in 1: a subclass that adds
   the no-op ``resume/update_weights/release`` verl's abstract rollout requires; verl's trainer
   itself only generates through vLLM/SGLang servers, which need a GPU);
3. the generated turns go into a real TransferQueue (local Ray) through verl's own
   ``AgentLoopWorkerTQ._agent_loop_postprocess``, as ``list[AgentLoopOutput]`` (step rows, keys
   ``{uid}_{session}_{index}``) and as one output per session with masked observation tokens
   (concatenated rows);
4. then the V1 trainer's own steps, in ``_step_once``'s order, on the ``empg_sync`` trainer:
   ``_balance_batch`` (pads the batch with verl's synthetic rows), ``_compute_old_log_prob``
   (the worker's ``compute_log_prob`` with entropies), ``_compute_advantage`` (``adv_estimator=empg``),
   ``_update_actor`` (the worker's ``update_actor``). Stand-in 2: the trainer's worker group is the
   in-process worker (verl's Ray worker group would dispatch the same calls to it).

The rewards are a rule (session 0 of each prompt scores 1, the others 0, so every group has a
non-zero GRPO advantage): the environment is not what this test is about.
"""

from __future__ import annotations

import os
import pathlib
import socket
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent


def _setup_env() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update({
        "VERL_PLATFORM": "cpu", "VERL_ENGINE_DEVICE": "cuda",
        "VERL_USE_EXTERNAL_MODULES": "cpu_platform,scaled.verl.plugin,scaled.verl.agent_loop",
        "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        "RAY_DEDUP_LOGS": "0", "RAY_DISABLE_IMPORT_WARNING": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    })
    for p in (str(HERE), str(ROOT)):
        if p not in sys.path:
            sys.path.insert(0, p)


_setup_env()

import asyncio  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings("ignore")

N_PROMPTS, N_SESSIONS, RESPONSE_LEN = 2, 2, 6
MINI_BATCH = 3  # prompts per mini-batch: verl pads every batch to a multiple of 3 x n = 6 rows


def compose_config(model_path: str, out_dir: pathlib.Path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = [
        f"actor_rollout_ref.model.path={model_path}",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.model.use_remove_padding=false",
        "actor_rollout_ref.actor.strategy=fsdp2",
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype=fp32",
        "actor_rollout_ref.actor.use_kl_loss=false",
        "actor_rollout_ref.actor.entropy_coeff=0",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={MINI_BATCH}",
        # micro-batches by tokens, as the launcher sets it (scaled/verl/launch.py)
        "actor_rollout_ref.actor.use_dynamic_bsz=true", "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=true",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=256",
        "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=256",
        "actor_rollout_ref.actor.optim.lr=1e-3",
        "actor_rollout_ref.actor.shuffle=false",
        f"actor_rollout_ref.rollout.n={N_SESSIONS}",
        f"actor_rollout_ref.rollout.response_length={RESPONSE_LEN}",
        "actor_rollout_ref.rollout.prompt_length=256",
        "actor_rollout_ref.rollout.temperature=1.0",
        "actor_rollout_ref.rollout.calculate_log_probs=false",  # HFRollout records no sampling log-probs
        f"data.train_batch_size={N_PROMPTS}",
        "trainer.device=cpu",
        "trainer.v1.trainer_mode=empg_sync",
        f"trainer.default_local_dir={out_dir / 'checkpoints'}",
        "algorithm.adv_estimator=empg",
        "algorithm.empg.zeta=0.1",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",  # one Ray actor per unit; 2 CPUs here
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "scaled/verl/config"), version_base=None):
        return compose(config_name="empg_trainer", overrides=overrides)


def main(out_dir: pathlib.Path) -> None:
    import ray
    import torch.distributed as dist

    import verl  # noqa: F401  (loads the shim and the plug-in)
    from scaled.tiny import build_tiny_model

    torch.manual_seed(0)
    model_path = build_tiny_model(out_dir / "tiny", vocab_size=512, hidden_size=64, num_layers=2, seed=0)
    config = compose_config(str(model_path), out_dir)
    dist.init_process_group("gloo", rank=0, world_size=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    import transfer_queue as tq

    tq.init(config.transfer_queue)
    print("ray and TransferQueue up", flush=True)
    try:
        run(config, out_dir)
    finally:
        tq.close()
        ray.shutdown()
        dist.destroy_process_group()


class _Rollout:
    """Stand-in 1: verl's HFRollout (its generate_sequences), with the constructor and the no-op methods
    verl 0.9.1's abstract rollout base requires (HFRollout itself is out of date: its __init__ calls
    BaseRollout.__init__ without the arguments the base now takes)."""

    @staticmethod
    def make(module, config):
        from verl.workers.rollout.hf_rollout import HFRollout

        class CPURollout(HFRollout):
            def __init__(self, module, config):
                self.config, self.module = config, module

            async def resume(self, tags):
                pass

            async def update_weights(self, weight_generator, **kwargs):
                pass

            async def release(self):
                pass

        return CPURollout(module, config)


class InProcessWorkerGroup:
    """Stand-in 2: the trainer's worker group, one rank, calling the worker's own (TransferQueue-bridged)
    methods in this process, as verl's Ray worker group would on each rank."""

    def __init__(self, worker):
        self.worker = worker
        self._dispatch_info = {"actor": [0]}  # data-parallel rank of each worker: one rank

    def compute_log_prob(self, batch):
        return self.worker.compute_log_prob(batch)

    def update_actor(self, batch):
        return self.worker.update_actor(batch)

    def save_checkpoint(self, *args, **kwargs):
        return self.worker.save_checkpoint(*args, **kwargs)


def generate(rollout, tokenizer, contexts: list[list[int]]) -> list[list[int]]:
    """One turn for each context (token ids, left-padded into a batch): the response ids up to EOS."""
    from verl import DataProto

    width = max(len(c) for c in contexts)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts])
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts])
    pos = torch.clamp(torch.cumsum(mask, 1) - 1, min=0)
    batch = DataProto.from_dict({"input_ids": ids, "attention_mask": mask, "position_ids": pos},
                                meta_info={"eos_token_id": tokenizer.eos_token_id, "pad_token_id": pad})
    out = rollout.generate_sequences(batch)
    responses = []
    for row, amask in zip(out.batch["responses"], out.batch["attention_mask"][:, width:]):
        responses.append(row[amask.bool()].tolist() or row[:1].tolist())
    return responses


def chat_ids(tokenizer, text: str) -> list[int]:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                         tokenize=True, return_dict=False)


def put_outputs(uid: str, session: int, outputs) -> None:
    """verl's own AgentLoopWorkerTQ._agent_loop_postprocess: outputs -> TransferQueue (keys uid_session_i)."""
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

    cls = getattr(AgentLoopWorkerTQ, "__ray_actor_class__", AgentLoopWorkerTQ)
    worker = object.__new__(cls)  # only the post-processing method is used: no LLM server, no reward workers
    worker.reward_loop_worker_handles, worker.distillation_enabled, worker.processor = None, False, None
    asyncio.run(worker._agent_loop_postprocess(outputs, False, uid=uid, session_id=session, global_steps=1))


def step_row_batch(rollout, tokenizer, tag: str):
    """Episodes as one AgentLoopOutput per turn (our agent loop's episode_outputs): 2 or 3 turns each."""
    from scaled.agent import Episode, StepRecord
    from scaled.verl.agent_loop import episode_outputs

    sessions = [(p, s, 2 + (p + s) % 2) for p in range(N_PROMPTS) for s in range(N_SESSIONS)]
    steps: dict = {key: [] for key in sessions}
    for t in range(3):
        live = [key for key in sessions if t < key[2]]
        contexts = [chat_ids(tokenizer, f"Task {key[0]}: go east. Step {t}.") for key in live]
        for key, ctx, resp in zip(live, contexts, generate(rollout, tokenizer, contexts)):
            steps[key].append(StepRecord(step=t, prompt="", text="", action="go east", valid=True, env_invalid=False,
                                         reward=0.0, observation="", admissible=[], prompt_ids=ctx, response_ids=resp))
    for (p, s, _), recs in steps.items():
        episode = Episode(task=f"task {p}", task_type="t", won=(s == 0), steps=recs)  # R = 10 * won
        put_outputs(f"{tag}{p}", s, episode_outputs(episode))


def concatenated_batch(rollout, tokenizer, tag: str):
    """One output per session: turn 0, observation tokens (response_mask 0), turn 1 (verl's multi-turn loops)."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

    sessions = [(p, s) for p in range(N_PROMPTS) for s in range(N_SESSIONS)]
    prompts = [chat_ids(tokenizer, f"Task {p}: open the door.") for p, _ in sessions]
    first = generate(rollout, tokenizer, prompts)
    obs = tokenizer.encode("<|im_end|>\n<|im_start|>user\nYou see a door.<|im_end|>\n<|im_start|>assistant\n",
                           add_special_tokens=False)
    second = generate(rollout, tokenizer, [p + a + obs for p, a in zip(prompts, first)])
    for (p, s), prompt, a, b in zip(sessions, prompts, first, second):
        out = AgentLoopOutput(prompt_ids=prompt, response_ids=a + obs + b,
                              response_mask=[1] * len(a) + [0] * len(obs) + [1] * len(b),
                              reward_score=float(s == 0), num_turns=4, metrics={},
                              extra_fields={"reward_extra_info": {}, "turn_scores": [], "tool_rewards": []})
        put_outputs(f"{tag}{p}", s, [out])


def batch_meta(prefix: str):
    import transfer_queue as tq
    from transfer_queue import KVBatchMeta

    listed = tq.kv_list(partition_id="train")
    listed = listed.get("train", listed)
    keys = sorted(k for k in listed if k.startswith(prefix) and k.count("_") >= 2)
    return KVBatchMeta(keys=keys, tags=[dict(listed[k]) for k in keys], partition_id="train", extra_info={})


def train_step(trainer, batch, record: dict) -> dict:
    """The V1 trainer's own steps, in _step_once's order (no reference model, no critic)."""
    import transfer_queue as tq

    metrics: dict = {}
    n_real = len(batch)
    batch = trainer._balance_batch(batch, metrics=metrics)  # pads with verl's synthetic rows
    batch = trainer._compute_old_log_prob(batch, metrics=metrics)
    batch = trainer._compute_advantage(batch, metrics=metrics)
    seen = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                           select_fields=["input_ids", "response_mask", "rm_scores", "entropy", "advantages", "uid"])
    record.update(
        n_real=n_real, keys=list(batch.keys), tags=[dict(t) for t in batch.tags],
        response_mask=seen["response_mask"].to_padded_tensor(0), rm_scores=seen["rm_scores"].to_padded_tensor(0.0),
        entropy=seen["entropy"].to_padded_tensor(0.0), advantages=seen["advantages"].to_padded_tensor(0.0),
        uid=list(seen["uid"]), input_ids=[x.tolist() for x in seen["input_ids"].unbind(0)],
    )
    trained.clear()
    batch = trainer._update_actor(batch, metrics=metrics)
    record["trained"] = [(ids, adv) for ids, adv in trained]
    from verl.trainer.ppo.v1.utils import MetricsAggregator

    agg = MetricsAggregator()
    agg.add_step_metrics(metrics, sample_count=sum(not t.get("is_padding", False) for t in batch.tags))
    record["metrics"] = {k: float(v) for k, v in agg.get_aggregated_metrics().items() if isinstance(v, (int, float))}
    tq.kv_clear(keys=batch.keys, partition_id=batch.partition_id)
    return record


#: (input_ids, advantages) of every row the actor's loss saw, filled by the recording loss below.
trained: list = []


def recording_loss(loss_fn):
    """verl's own PPO loss (``set_loss_fn``, verl's supported way to change it), recording its inputs."""

    def loss(*, model_output, data, dp_group=None):
        ids, adv = data["input_ids"], data["advantages"]
        for i in range(len(data)):
            trained.append((ids[i].tolist(), adv[i].detach().clone()))
        return loss_fn(model_output=model_output, data=data, dp_group=dp_group)

    return loss


def _full(t: torch.Tensor) -> torch.Tensor:
    """An FSDP2 parameter (a DTensor) as a plain tensor."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def run(config, out_dir: pathlib.Path) -> None:
    from transformers import AutoTokenizer
    from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
    from verl.workers.engine_workers import ActorRolloutRefWorker

    import scaled.verl.plugin as plugin

    tokenizer = AutoTokenizer.from_pretrained(config.actor_rollout_ref.model.path)
    worker = ActorRolloutRefWorker(config=config.actor_rollout_ref, role="actor")
    worker.init_model()
    worker.set_loss_fn(recording_loss(worker.loss_fn))
    module = worker.actor.engine.module
    params0 = {k: v.detach().clone() for k, v in module.state_dict().items()}
    rollout = _Rollout.make(module, config.actor_rollout_ref.rollout)

    trainer_cls = get_trainer_cls(config.trainer.v1.trainer_mode)
    trainer = trainer_cls(config)
    trainer.actor_rollout_wg = InProcessWorkerGroup(worker)
    trainer.tokenizer = tokenizer
    trainer.global_steps = 1

    result = {"trainer_cls": f"{trainer_cls.__module__}.{trainer_cls.__qualname__}",
              "trainer_mode": trainer.trainer_mode, "installed": plugin.is_installed()}
    torch.manual_seed(1)
    step_row_batch(rollout, tokenizer, "s")
    result["steps"] = train_step(trainer, batch_meta("s"), {})
    print("step rows trained", flush=True)
    concatenated_batch(rollout, tokenizer, "c")
    result["concat"] = train_step(trainer, batch_meta("c"), {})
    print("concatenated rows trained", flush=True)
    params1 = {k: _full(v).detach().clone() for k, v in module.state_dict().items()}
    result["param_change"] = {k: float((params1[k] - _full(params0[k])).abs().max()) for k in params0}
    result["params"] = params1
    # the trainer's own checkpoint step (stand-in 3: the dataloader, whose state it saves next to the model)
    trainer.global_steps = 2
    trainer.train_dataloader = type("NoData", (), {"state_dict": staticmethod(dict)})()
    trainer._save_checkpoint()
    result["checkpoint"] = str(pathlib.Path(config.trainer.default_local_dir) / "global_step_2" / "actor")
    result["model_path"] = str(config.actor_rollout_ref.model.path)
    torch.save(result, out_dir / "result.pt")
    print("done", flush=True)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
