"""scaled.verl_agent_loop: the episode core on the real ALFWorld engine, and verl's agent-loop registry."""

import asyncio

import pytest

pytestmark = pytest.mark.verl

pytest.importorskip("verl.protocol")


def test_agent_loop_is_registered_in_verl():
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    import scaled.verl_agent_loop as loop

    assert _agent_loop_registry["empg_text_env"]["_target_"] == "scaled.verl_agent_loop.TextEnvAgentLoop"
    assert issubclass(loop.TextEnvAgentLoop, __import__("verl").experimental.agent_loop.agent_loop.AgentLoopBase)


def test_episode_on_real_alfworld_with_expert_answers(tmp_path):
    pytest.importorskip("alfworld")
    from scaled.envs import make_env
    from scaled.verl_agent_loop import episode_reward, run_episode

    env = make_env("alfworld", task_types=["pick_and_place_simple"], expert_plan=True, game_dir=tmp_path, seed=0)
    state = {"info": None, "t": 0}
    orig_reset, orig_step = env.reset, env.step

    def reset(seed=None):
        obs, info = orig_reset(seed=seed)
        state["info"] = info
        return obs, info

    def step(action):
        out = orig_step(action)
        state["info"] = out[4]
        return out

    env.reset, env.step = reset, step

    async def policy(prompt):
        # answer turn 1 with a malformed reply (invalid: no <action>), then follow the planner
        state["t"] += 1
        assert "Your admissible actions" in prompt
        if state["t"] == 1:
            text = "I am not sure."
        else:
            text = f"<think>plan</think><action>{state['info']['expert_plan'][0]}</action>"
        return [1, 2, 3], [ord(c) % 250 for c in text], text

    ep = asyncio.run(run_episode(env, policy, env_name="alfworld", seed=0, max_steps=30))
    env.close()
    assert ep.won
    assert ep.num_invalid == 1 and not ep.steps[0].valid and all(s.valid for s in ep.steps[1:])
    assert ep.reward == pytest.approx(10.0 - 0.1)  # 10 * won - 0.1 * 1 invalid
    assert episode_reward(False, 3) == pytest.approx(-0.3)
    assert len(ep.steps) >= 3


def test_run_episode_rejects_bad_arguments():
    from scaled.verl_agent_loop import run_episode

    with pytest.raises(ValueError, match="env_name"):
        asyncio.run(run_episode(object(), None, env_name="nope"))


def test_outputs_pass_verl_v1_postprocess(monkeypatch):
    """Our list[AgentLoopOutput] through verl 0.9.1's real AgentLoopWorkerTQ._agent_loop_postprocess.

    Only the TransferQueue put is captured (no TQ server on CPU). Regression: the final output lacked
    extra_fields["reward_extra_info"], which verl copies onto the earlier outputs -> KeyError.
    """
    tq_mod = pytest.importorskip("verl.trainer.ppo.v1.agent_loop_tq")
    from scaled.verl_agent_loop import EpisodeResult, StepRecord, episode_outputs

    ep = EpisodeResult(steps=[StepRecord([1, 2], [3, 4, 5], "go", False, 0.0),
                              StepRecord([1, 6], [7], "take", True, 0.0),
                              StepRecord([1, 8, 9], [10, 11], "put", True, 1.0)], won=True, num_invalid=1)
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
    from scaled.verl_plugin import steps_from_keys

    traj, step = steps_from_keys(captured["keys"])
    assert list(traj) == ["u_1_3"] * 3 and list(step) == [0, 1, 2]
    # verl copied the episode reward 10*won - 0.1*1 = 9.9 onto every row, on its last response token
    for out, n in zip(outputs, (3, 1, 2)):
        assert out.reward_score == pytest.approx(9.9)
    rm = captured["fields"]["rm_scores"]
    assert [float(r[-1]) for r in rm] == pytest.approx([9.9] * 3)
    assert [float(r[:-1].abs().sum()) for r in rm] == [0.0, 0.0, 0.0]
    assert [int(r.sum()) for r in captured["fields"]["response_mask"]] == [3, 1, 2]
