"""Scripted answers for the same episodes in both drivers (test helper, not collected: no ``test_`` prefix).

For each environment two tasks (two seeds with different tasks) and, per task, the answers to give:
an answer without tags (invalid: -0.1), a well-formed command the environment rejects (no penalty),
then an oracle's commands: ALFWorld's planner, TextWorld's walkthrough, and on WebShop a search for the
instruction, the goal's product and options, Buy Now (the second WebShop task buys the wrong product:
a partial score, not a win). Used by tests/scaled/test_scaled_agent_loop_envs.py (the episode runner)
and tests/verl/test_agent_loop.py (verl's agent-loop class).
"""

from __future__ import annotations

import re

import torch

ENVS = ("alfworld", "webshop", "textworld")
#: make_env keyword arguments: the 7 shipped ALFWorld games, the shipped WebShop catalogue, two TextWorld games.
ENV_KWARGS = {"alfworld": {"max_steps": 40}, "webshop": {"max_steps": 15}, "textworld": {"game_seeds": [0, 1], "max_steps": 30}}


def make_env(name: str):
    from scaled.envs import make_env as make

    return make(name, **ENV_KWARGS[name])


def _oracle(name: str, env, info: dict, wrong_product: bool) -> list[str]:
    if name == "alfworld":
        from scaled.envs.alfworld import expert_plan

        return list(expert_plan(env.gamefile))
    if name == "textworld":
        return list(info["walkthrough"])
    goal = env.goal
    product = goal["asin"].lower()
    if wrong_product:  # another product of the result page: bought, a partial score, not won
        _, _, _, _, page = env.step(f"search[{goal['instruction_text']}]")
        products = [m.group(1) for c in page["admissible_commands"] if (m := re.fullmatch(r"click\[(b0\w+)\]", c))]
        product = next(p for p in products if p != goal["asin"].lower())
    return ([f"search[{goal['instruction_text']}]", f"click[{product}]"]
            + ([] if wrong_product else [f"click[{o.lower()}]" for o in goal.get("goal_options", [])])
            + ["click[buy now]"])


def scripts(name: str) -> dict[int, tuple[str, list[str]]]:
    """``{seed: (task text, answers)}`` for two seeds with different tasks."""
    env = make_env(name)
    chosen: dict[int, tuple[str, list[str]]] = {}
    try:
        for seed in range(50):
            _, info = env.reset(seed=seed)
            task = info["task"]
            if any(task == t for t, _ in chosen.values()):
                continue
            plan = _oracle(name, env, info, wrong_product=(name == "webshop" and bool(chosen)))
            first = plan[0]
            answers = [
                "I am not sure what to do.",                                     # invalid: no tags
                "<think>try</think><action>fly to the moon</action>",            # well-formed, rejected: no penalty
                f"<think>plan</think><action>{first.upper() if name == 'alfworld' else first}</action>",
            ] + [f"<think>plan</think><action>{a}</action>" for a in plan[1:]]
            chosen[seed] = (task, answers)
            if len(chosen) == 2:
                return chosen
    finally:
        env.close()
    raise AssertionError(f"{name}: fewer than two distinct tasks in seeds 0..49")


class ScriptedAnswers:
    """``prompt_text -> answer``: the next scripted answer of the task named in the prompt."""

    def __init__(self, script: dict[int, tuple[str, list[str]]]):
        self.queues = {task: list(answers) for task, answers in script.values()}

    def __call__(self, prompt: str) -> str:
        tasks = [t for t in self.queues if t in prompt]
        assert len(tasks) == 1, f"the prompt names {len(tasks)} known tasks"
        queue = self.queues[tasks[0]]
        return queue.pop(0) if queue else "<think>done</think><action>look</action>"


class ScriptedPolicy:
    """The LLM replaced by scripted answers (the tokenizer is real): what ``collect_rollouts`` needs of a policy."""

    def __init__(self, tokenizer, answer):
        self.tokenizer, self.answer = tokenizer, answer
        self.eos_id = tokenizer.eos_token_id
        self.temperature = 1.0

    def generate(self, prompts, *, max_new_tokens, generator=None, greedy=False):
        from scaled.policy import Generation

        gen = Generation()
        for ids in prompts:
            text = self.answer(self.tokenizer.decode(ids, skip_special_tokens=True))
            resp = self.tokenizer.encode(text, add_special_tokens=False) + [self.eos_id]
            gen.response_ids.append(resp)
            gen.logprobs.append(torch.zeros(len(resp)))
            gen.entropies.append(torch.ones(len(resp)))
            gen.truncated.append(False)
        return gen


def expected_reward(name: str, index: int, n_invalid: int = 1) -> float:
    """R = 10·won − 0.1·#invalid: the first task of each env is won (the second too, except on WebShop)."""
    won = not (name == "webshop" and index == 1)
    return 10.0 * won - 0.1 * n_invalid


def record(step) -> dict:
    """A StepRecord without the sampler-only fields (verl's agent loop records no log-probs)."""
    import dataclasses

    fields = dataclasses.asdict(step)
    fields.pop("logprobs"), fields.pop("entropies")
    return fields


def play_standalone(name: str, tokenizer, script: dict[int, tuple[str, list[str]]], agent) -> list:
    """The scripted episodes of ``script`` played by ``scaled.rollout.collect_rollouts`` (one env per seed, in
    sorted seed order, each its own group) with the agent config ``agent``; returns the episodes."""
    from scaled.rollout import RolloutConfig, collect_rollouts

    seeds = sorted(script)
    envs = [make_env(name) for _ in seeds]
    try:
        return collect_rollouts(ScriptedPolicy(tokenizer, ScriptedAnswers(script)), envs, seeds=seeds,
                                groups=list(range(len(seeds))), agent=agent, config=RolloutConfig(max_new_tokens=512))
    finally:
        for env in envs:
            env.close()
