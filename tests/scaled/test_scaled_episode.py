"""scaled.agent.Episode: the one episode definition, played by the standalone rollout and by the verl agent loop.

Scripted answers (an invalid one, a well-formed but non-admissible one, an upper-case one, one with two
action tags, then the planner's winning commands) on the real ALFWorld engine: both drivers must
produce identical rewards and step records.
"""

import asyncio
import dataclasses
import re

import pytest

from agent_scripts import ScriptedPolicy
from scaled.agent import AgentConfig, Episode, chat_prompt_ids
from scaled.rollout import RolloutConfig, collect_rollouts
from scaled.tiny import build_tiny_tokenizer
from scaled.verl.agent_loop import agent_config_from_extra, run_episode

pytest.importorskip("alfworld")

_TASK = re.compile(r"Your task is to: (.*)")


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def _make_env():
    from scaled.envs import make_env

    return make_env("alfworld", max_steps=40)


@pytest.fixture(scope="module")
def scripts():
    """Two seeds with different games, and for each game's task the answers to give, in order."""
    from scaled.envs.alfworld import expert_plan

    env = _make_env()
    chosen, games = {}, set()
    for seed in range(50):
        env.reset(seed=seed)
        if env.gamefile not in games:
            games.add(env.gamefile)
            chosen[seed] = (env.task, expert_plan(env.gamefile))
        if len(chosen) == 2:
            break
    env.close()
    out = {}
    for seed, (task, plan) in chosen.items():
        answers = [
            "I am not sure what to do.",                                     # invalid: no tags (fallback action)
            "<think>try</think><action>fly to the moon</action>",            # valid form, env rejects it: no penalty
            f"<think>plan</think><action>{plan[0].upper()}</action>",        # lower-cased and matched
            "<think>t</think><action>look</action><action>look</action>",    # invalid: two action tags
        ] + [f"<think>plan</think><action>{a}</action>" for a in plan[1:]]
        out[seed] = (task, answers)
    return out


def _answer_from(scripts):
    """``prompt_text -> answer``: the next scripted answer for the prompt's task."""
    queues = {task: list(answers) for task, answers in scripts.values()}

    def answer(prompt: str) -> str:
        task = _TASK.search(prompt).group(1).strip()
        return queues[task].pop(0)

    return answer


def _record(step):
    fields = dataclasses.asdict(step)
    fields.pop("logprobs"), fields.pop("entropies")  # the verl loop records none: verl recomputes them
    return fields


def test_standalone_rollout_and_verl_agent_loop_play_the_same_episode(tokenizer, scripts):
    config = AgentConfig(max_steps=30)
    seeds = sorted(scripts)
    # 1. the standalone rollout: both episodes in lock step, answers generated as one batch
    envs = [_make_env() for _ in seeds]
    standalone = collect_rollouts(ScriptedPolicy(tokenizer, _answer_from(scripts)), envs, seeds=seeds,
                                  groups=[0, 1], agent=config, config=RolloutConfig(max_new_tokens=512))
    # 2. the verl agent loop's episode runner: one async episode at a time
    answer = _answer_from(scripts)

    async def tokenize(prompt):
        return chat_prompt_ids(tokenizer, prompt)

    async def generate(prompt_ids):
        text = answer(tokenizer.decode(prompt_ids, skip_special_tokens=True))
        return tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id], text, False

    verl = [asyncio.run(run_episode(_make_env(), tokenize, generate, config=config, seed=s)) for s in seeds]

    for a, b, seed in zip(standalone, verl, seeds):
        n_plan = len(scripts[seed][1]) - 3
        assert a.won and b.won and a.length == b.length == 4 + n_plan - 1
        # 10 · won − 0.1 · 2 invalid answers (no tags; two action tags); the rejected command costs nothing
        assert a.reward == b.reward == pytest.approx(10.0 - 0.2)
        assert [s.valid for s in a.steps[:4]] == [False, True, True, False]
        assert a.steps[1].env_invalid and a.steps[1].action == "fly to the moon"
        assert a.steps[2].action == a.steps[2].admissible[a.steps[2].admissible.index(a.steps[2].action)]
        assert a.steps[2].action == a.steps[2].text.split("<action>")[1].split("</action>")[0].lower()
        assert (a.task, a.task_type, a.seed) == (b.task, b.task_type, b.seed)
        assert [_record(s) for s in a.steps] == [_record(s) for s in b.steps]
        assert [s.reward for s in a.steps] == [-0.1, 0.0, 0.0, -0.1] + [0.0] * (n_plan - 2) + [10.0]
    for env in envs:
        env.close()


def test_rewards_are_configurable_and_episodes_end_at_the_turn_limit(tokenizer, scripts):
    seed = sorted(scripts)[0]
    answers = iter(["no tags at all", "<think>t</think><action>look</action>", "<action>look</action>"])
    episode = Episode.start(_make_env(), seed=seed, config=AgentConfig(max_steps=3, invalid_penalty=1.5,
                                                                           require_think=True))
    while not episode.done:
        episode.advance(next(answers))
    assert episode.length == 3 and not episode.won
    assert [s.reward for s in episode.steps] == [-1.5, 0.0, -1.5]  # the last answer lacks <think>
    assert episode.reward == -3.0 and episode.num_invalid == 2
    with pytest.raises(RuntimeError, match="over"):
        episode.advance("<think>t</think><action>look</action>")
    lenient = Episode.start(_make_env(), seed=seed, config=AgentConfig(max_steps=1, require_think=False,
                                                                         check_admissible=True, win_reward=3.0))
    assert lenient.advance("<action>look</action>").valid and lenient.done
    strict = Episode.start(_make_env(), seed=seed, config=AgentConfig(max_steps=1, check_admissible=True))
    assert not strict.advance("<think>t</think><action>fly to the moon</action>").valid  # checked: not admissible


def test_history_and_followup_prompts(tokenizer, scripts):
    seed = sorted(scripts)[0]
    episode = Episode.start(_make_env(), seed=seed, config=AgentConfig(max_steps=5, history_length=1))
    first = episode.prompt()
    assert "Prior to this step" not in first and episode.task in first
    episode.advance("<think>t</think><action>look</action>")
    episode.advance("<think>t</think><action>inventory</action>")
    second = episode.prompt()
    assert "already taken 2 step(s)" in second and "Action 2: 'inventory'" in second and "Action 1:" not in second
    chat = Episode.start(_make_env(), seed=seed, config=AgentConfig(max_steps=5, layout="concat"))
    assert not chat.is_followup and chat.task in chat.prompt()
    chat.advance("<think>t</think><action>look</action>")
    assert chat.is_followup and chat.task not in chat.prompt() and "Your current observation is" in chat.prompt()


def test_episode_and_agent_config_bad_input():
    class NoTask:
        name = "alfworld"

        def reset(self, seed=None):
            return "obs", {"admissible_commands": []}

    with pytest.raises(ValueError, match="'task'"):
        Episode.start(NoTask(), seed=0, config=AgentConfig())
    with pytest.raises(ValueError, match="env_name"):
        Episode.start(NoTask(), seed=0, config=AgentConfig(), env_name="chess")
    with pytest.raises(TypeError, match="AgentConfig"):
        Episode.start(NoTask(), seed=0, config={"max_steps": 3})
    with pytest.raises(ValueError, match=r"agent\.layout"):
        AgentConfig(layout="diagonal")
    with pytest.raises(ValueError, match=r"agent\.max_steps"):
        AgentConfig(max_steps=0)
    with pytest.raises(ValueError, match=r"agent\.invalid_penalty"):
        AgentConfig(invalid_penalty=float("nan"))


def test_verl_rows_carry_the_agent_config():
    cfg = agent_config_from_extra({"env": "webshop", "agent": '{"invalid_penalty": 0.5}'})
    assert cfg.max_steps == 15 and cfg.invalid_penalty == 0.5  # the env's step limit by default
    assert agent_config_from_extra({"env": "alfworld", "agent": {"max_steps": 7}}).max_steps == 7
    with pytest.raises(ValueError, match="step layout"):
        agent_config_from_extra({"env": "alfworld", "agent": {"layout": "concat"}})
    with pytest.raises(ValueError, match="mapping"):
        agent_config_from_extra({"env": "alfworld", "agent": "[1, 2]"})
