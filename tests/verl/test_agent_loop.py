"""scaled.verl.agent_loop inside verl: the registry, verl's V1 post-processing of our outputs, and verl's
agent-loop class itself (verl's own tokenisation, the worker's env pool and executor) playing the same
episodes as the standalone rollout on ALFWorld, WebShop and TextWorld.

Only the LLM server is replaced (scripted answers); the episode runner alone is also tested in the main
environment (tests/scaled/test_scaled_agent_loop_envs.py).
"""

import asyncio
import importlib.util
import pathlib
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.verl

pytest.importorskip("verl.protocol")

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("agent_scripts", ROOT / "tests" / "scaled" / "agent_scripts.py")
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)


def test_agent_loop_is_registered_in_verl():
    from verl.experimental.agent_loop.agent_loop import AgentLoopBase, _agent_loop_registry

    import scaled.verl.agent_loop as loop

    assert _agent_loop_registry["empg_text_env"]["_target_"] == "scaled.verl.agent_loop.TextEnvAgentLoop"
    assert issubclass(loop.TextEnvAgentLoop, AgentLoopBase)


def test_outputs_pass_verl_v1_postprocess(monkeypatch):
    """Our list[AgentLoopOutput] through verl 0.9.1's real AgentLoopWorkerTQ._agent_loop_postprocess.

    Only the TransferQueue put is captured here (tests/verl/test_worker_cpu.py uses a real one).
    Regression: the final output lacked extra_fields["reward_extra_info"], which verl copies onto the
    earlier outputs -> KeyError.
    """
    tq_mod = pytest.importorskip("verl.trainer.ppo.v1.agent_loop_tq")
    from scaled.agent import Episode, StepRecord
    from scaled.verl.agent_loop import episode_outputs

    def step(t, prompt_ids, response_ids, valid, reward):
        return StepRecord(step=t, prompt="", text="", action="a", valid=valid, env_invalid=False, reward=reward,
                          observation="", admissible=[], prompt_ids=prompt_ids, response_ids=response_ids)

    ep = Episode(task="t", task_type="t", won=True, steps=[step(0, [1, 2], [3, 4, 5], False, -0.1),
                                                           step(1, [1, 6], [7], True, 0.0),
                                                           step(2, [1, 8, 9], [10, 11], True, 10.0)])
    assert ep.reward == pytest.approx(9.9) and ep.num_invalid == 1
    outputs = episode_outputs(ep)
    captured = {}

    async def put(*, keys, fields, tags, partition_id):
        captured.update(keys=keys, fields=fields, tags=tags, partition_id=partition_id)

    monkeypatch.setattr(tq_mod.tq, "async_kv_batch_put", put)
    cls = getattr(tq_mod.AgentLoopWorkerTQ, "__ray_actor_class__", tq_mod.AgentLoopWorkerTQ)  # ray.remote wrapper
    worker = object.__new__(cls)
    worker.reward_loop_worker_handles, worker.distillation_enabled, worker.processor = None, False, None
    asyncio.run(worker._agent_loop_postprocess(outputs, False, uid="u_1", session_id=3, global_steps=7))
    # keys {uid}_{session}_{index}; the plug-in reads trajectory "u_1_3" and steps 0, 1, 2 from them
    assert captured["keys"] == ["u_1_3_0", "u_1_3_1", "u_1_3_2"]
    from scaled.verl.plugin import steps_from_keys

    traj, steps = steps_from_keys(captured["keys"])
    assert list(traj) == ["u_1_3"] * 3 and list(steps) == [0, 1, 2]
    # verl copied the episode reward 10*won - 0.1*1 = 9.9 onto every row, on its last response token
    for out in outputs:
        assert out.reward_score == pytest.approx(9.9)
    rm = captured["fields"]["rm_scores"]
    assert [float(r[-1]) for r in rm] == pytest.approx([9.9] * 3)
    assert [float(r[:-1].abs().sum()) for r in rm] == [0.0, 0.0, 0.0]
    assert [int(r.sum()) for r in captured["fields"]["response_mask"]] == [3, 1, 2]


class ScriptedServer:
    """verl's LLM server client replaced by scripted answers: ``generate(prompt_ids) -> token_ids``."""

    def __init__(self, tokenizer, answer):
        self.tokenizer, self.answer, self.prompts = tokenizer, answer, []

    async def generate(self, *, request_id, prompt_ids, sampling_params, **kwargs):
        self.prompts.append(list(prompt_ids))
        text = self.answer(self.tokenizer.decode(prompt_ids, skip_special_tokens=True))
        return SimpleNamespace(token_ids=self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id])


def _agent_loop(tokenizer, server, *, prompt_length=4096, response_length=512):
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap

    from scaled.verl.agent_loop import TextEnvAgentLoop

    cfg = OmegaConf.create({"actor_rollout_ref": {"rollout": {"prompt_length": prompt_length,
                                                              "response_length": response_length}},
                            "data": {}})
    return TextEnvAgentLoop(trainer_config=DictConfigWrap(cfg), server_manager=server, tokenizer=tokenizer,
                            processor=None, dataset_cls=None, data_config=DictConfigWrap(cfg.data))


@pytest.mark.parametrize("name", S.ENVS)
def test_verl_agent_loop_plays_the_standalone_episodes(name):
    """verl's TextEnvAgentLoop.run (verl's own chat tokenisation, the worker's env pool, the env executor)
    and scaled.rollout.collect_rollouts give identical rewards and turns on each environment."""
    import json

    pytest.importorskip("alfworld")
    from scaled.agent import AgentConfig, chat_prompt_ids
    from scaled.tiny import build_tiny_tokenizer
    from scaled.verl import agent_loop as al

    tokenizer = build_tiny_tokenizer()
    config = AgentConfig(max_steps=30)
    script = S.scripts(name)
    seeds = sorted(script)
    standalone = S.play_standalone(name, tokenizer, script, config)

    server = ScriptedServer(tokenizer, S.ScriptedAnswers(script))
    rows = [{"env": name, "seed": s, "task_index": None, "env_kwargs": json.dumps(S.ENV_KWARGS[name]),
             "agent": json.dumps({"max_steps": 30})} for s in seeds]
    before = al.POOL.created

    async def both():  # one agent-loop object per episode, built in the worker's event loop (as verl does)
        return await asyncio.gather(*(_agent_loop(tokenizer, server).run({}, extra_info=row) for row in rows))

    outputs = asyncio.run(both())
    assert al.POOL.created - before == 2  # two episodes at once in this worker: two pooled environments
    for i, (episode, outs) in enumerate(zip(standalone, outputs)):
        assert len(outs) == episode.length  # one output per turn
        assert outs[-1].reward_score == pytest.approx(episode.reward) == pytest.approx(S.expected_reward(name, i))
        assert all(o.reward_score is None for o in outs[:-1])
        assert [o.prompt_ids for o in outs] == [s.prompt_ids for s in episode.steps]  # verl's tokenisation = ours
        assert [o.response_ids for o in outs] == [s.response_ids for s in episode.steps]
        assert outs[-1].extra_fields["reward_extra_info"] == {"won": float(episode.won),
                                                               "num_invalid": float(episode.num_invalid)}
    assert server.prompts[0] == chat_prompt_ids(tokenizer, standalone[0].steps[0].prompt) or \
        server.prompts[0] == chat_prompt_ids(tokenizer, standalone[1].steps[0].prompt)
    # the worker's pool hands the same environments out again
    server.answer = S.ScriptedAnswers(script)
    again = asyncio.run(both())
    assert al.POOL.created - before == 2
    assert [[o.response_ids for o in outs] for outs in again] == [[o.response_ids for o in outs] for outs in outputs]


def test_verl_agent_loop_ends_an_episode_whose_prompt_is_too_long():
    """verl would cut the prompt to rollout.prompt_length; the episode ends instead, as in the standalone rollout."""
    import json

    from scaled.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    script = S.scripts("textworld")
    server = ScriptedServer(tokenizer, S.ScriptedAnswers(script))
    row = {"env": "textworld", "seed": sorted(script)[0], "env_kwargs": json.dumps(S.ENV_KWARGS["textworld"])}

    async def run():
        return await _agent_loop(tokenizer, server, prompt_length=40).run({}, extra_info=row)

    assert asyncio.run(run()) == [] and server.prompts == []
