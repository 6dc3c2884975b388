"""scaled.verl.agent_loop inside verl: the agent-loop registry and verl's V1 postprocessing of our outputs.

The episode itself (scaled.agent.Episode, driven by run_episode) is tested in the main environment
against the standalone rollout (tests/scaled/test_scaled_episode.py).
"""

import asyncio

import pytest

pytestmark = pytest.mark.verl

pytest.importorskip("verl.protocol")


def test_agent_loop_is_registered_in_verl():
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    import scaled.verl.agent_loop as loop

    assert _agent_loop_registry["empg_text_env"]["_target_"] == "scaled.verl.agent_loop.TextEnvAgentLoop"
    assert issubclass(loop.TextEnvAgentLoop, __import__("verl").experimental.agent_loop.agent_loop.AgentLoopBase)


def test_outputs_pass_verl_v1_postprocess(monkeypatch):
    """Our list[AgentLoopOutput] through verl 0.9.1's real AgentLoopWorkerTQ._agent_loop_postprocess.

    Only the TransferQueue put is captured (no TQ server on CPU). Regression: the final output lacked
    extra_fields["reward_extra_info"], which verl copies onto the earlier outputs -> KeyError.
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

    traj, step = steps_from_keys(captured["keys"])
    assert list(traj) == ["u_1_3"] * 3 and list(step) == [0, 1, 2]
    # verl copied the episode reward 10*won - 0.1*1 = 9.9 onto every row, on its last response token
    for out, n in zip(outputs, (3, 1, 2)):
        assert out.reward_score == pytest.approx(9.9)
    rm = captured["fields"]["rm_scores"]
    assert [float(r[-1]) for r in rm] == pytest.approx([9.9] * 3)
    assert [float(r[:-1].abs().sum()) for r in rm] == [0.0, 0.0, 0.0]
    assert [int(r.sum()) for r in captured["fields"]["response_mask"]] == [3, 1, 2]
