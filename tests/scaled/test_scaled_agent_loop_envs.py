"""The standalone rollout and the verl agent loop's episode runner play the same episodes, on each environment.

Scripted answers (tests/scaled/agent_scripts.py) on the real ALFWorld engine, the WebShop env over the
shipped catalogue and TextWorld games: ``scaled.rollout.collect_rollouts`` (episodes in lock step) and
``scaled.verl.agent_loop.run_episode`` (one async episode at a time, environments from a pool, resets
and steps on the pool's executor) must give identical rewards and step records. Also: a pooled
environment reused for a second episode plays it exactly like a fresh one.
"""

import asyncio
import importlib.util
import pathlib

import pytest

from scaled.agent import AgentConfig, chat_prompt_ids
from scaled.rollout import RolloutConfig, collect_rollouts
from scaled.tiny import build_tiny_tokenizer
from scaled.verl.agent_loop import EnvPool, env_executor, run_episode

pytest.importorskip("alfworld")
pytest.importorskip("bm25s")

_spec = importlib.util.spec_from_file_location("agent_scripts", pathlib.Path(__file__).with_name("agent_scripts.py"))
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)

CONFIG = AgentConfig(max_steps=30)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def _runner(tokenizer, answer):
    async def tokenize(prompt):
        return chat_prompt_ids(tokenizer, prompt)

    async def generate(prompt_ids):
        text = answer(tokenizer.decode(prompt_ids, skip_special_tokens=True))
        return tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id], text, False

    return tokenize, generate


@pytest.mark.parametrize("name", S.ENVS)
def test_standalone_rollout_and_agent_loop_runner_give_identical_episodes(tokenizer, name):
    script = S.scripts(name)
    seeds = sorted(script)
    standalone = S.play_standalone(name, tokenizer, script, CONFIG)

    # the agent loop's runner: both episodes concurrently, environments borrowed from a pool
    pool = EnvPool()
    tokenize, generate = _runner(tokenizer, S.ScriptedAnswers(script))

    async def one(seed):
        with pool.borrow(name, S.ENV_KWARGS[name]) as env:
            return await run_episode(env, tokenize, generate, config=CONFIG, seed=seed, executor=env_executor(env))

    async def both():
        return await asyncio.gather(*(one(s) for s in seeds))

    verl = asyncio.run(both())
    assert pool.created == 2  # two episodes at once: two environments

    for i, (a, b) in enumerate(zip(standalone, verl)):
        assert a.reward == b.reward == pytest.approx(S.expected_reward(name, i))
        assert a.won == b.won == (S.expected_reward(name, i) > 0)
        assert [s.valid for s in a.steps[:2]] == [False, True] and a.steps[1].env_invalid
        assert (a.task, a.task_type, a.seed, a.length, a.env_return) == (b.task, b.task_type, b.seed, b.length, b.env_return)
        assert [S.record(s) for s in a.steps] == [S.record(s) for s in b.steps]
    if name == "webshop":
        assert 0 < verl[1].env_return < 1  # the wrong product: a partial score

    # the pool reuses its environments: the same two episodes again, one after the other, on ONE env
    tokenize, generate = _runner(tokenizer, S.ScriptedAnswers(script))
    reused = EnvPool()

    async def sequential():
        out = []
        for s in seeds:
            with reused.borrow(name, S.ENV_KWARGS[name]) as env:
                out.append(await run_episode(env, tokenize, generate, config=CONFIG, seed=s, executor=env_executor(env)))
        return out

    again = asyncio.run(sequential())
    assert reused.created == 1
    assert [[S.record(s) for s in e.steps] for e in again] == [[S.record(s) for s in e.steps] for e in verl]
    pool.close()
    reused.close()


def test_runner_stops_a_long_prompt_like_the_standalone_rollout(tokenizer):
    script = S.scripts("textworld")
    seed = sorted(script)[0]
    limit = 40  # tokens: shorter than the first prompt
    env = S.make_env("textworld")
    standalone = collect_rollouts(S.ScriptedPolicy(tokenizer, S.ScriptedAnswers(script)), [env], seeds=[seed],
                                  groups=[0], agent=CONFIG, config=RolloutConfig(max_new_tokens=64,
                                                                                 max_prompt_tokens=limit))[0]
    tokenize, generate = _runner(tokenizer, S.ScriptedAnswers(script))
    verl = asyncio.run(run_episode(env, tokenize, generate, config=CONFIG, seed=seed, max_prompt_tokens=limit))
    assert standalone.stop_reason == verl.stop_reason == "prompt_too_long"
    assert standalone.length == verl.length == 0 and standalone.reward == verl.reward == 0.0
    env.close()


def test_env_executor_serialises_engines_that_are_not_thread_safe():
    alf, web = S.make_env("alfworld"), S.make_env("webshop")
    assert not alf.concurrent_steps and web.concurrent_steps
    assert env_executor(alf)._max_workers == 1 and env_executor(web)._max_workers > 1
    assert env_executor(alf) is env_executor(S.make_env("textworld"))  # one thread for every such engine
    alf.close()


def test_pool_drops_an_env_after_an_error():
    pool = EnvPool()
    with pytest.raises(RuntimeError):
        with pool.borrow("textworld", {"game_seeds": [0]}):
            raise RuntimeError("episode failed")
    with pool.borrow("textworld", {"game_seeds": [0]}):
        pass
    assert pool.created == 2  # the failed one was not handed out again
    with pool.borrow("textworld", {"game_seeds": [0]}), pool.borrow("textworld", {"game_seeds": [1]}):
        pass
    assert pool.created == 3  # other kwargs, another environment; the same kwargs reuse the free one
    pool.close()
