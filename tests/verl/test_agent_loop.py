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
