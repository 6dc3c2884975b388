"""Batched multi-turn rollouts of an LLM policy in text environments, and the two batch layouts.

One rollout runs ``N = n_tasks · G`` environments in lock step: every environment of group ``j`` is
reset with the same seed (the same task), so GRPO can compare its G trajectories. At each turn the
active environments' prompts are generated as one batch (:meth:`scaled.policy.Policy.generate`), the
answers are projected to actions (:func:`scaled.projection.project_action`) and sent to the
environments.

Context per turn (``RolloutConfig.layout``):

* ``"step"`` (verl-agent): every turn gets a fresh prompt with the task, the current observation,
  the last ``history_length`` (observation, action) pairs and the admissible actions
  (:func:`scaled.prompts.build_prompt`). Training uses **one row per step**: prompt + response.
* ``"concat"`` (RAGEN / multi-turn chat): the context is the whole conversation so far; later user
  turns only carry the new observation (:func:`scaled.prompts.followup_prompt`). Training uses
  **one concatenated row per trajectory**, with step ids taken from the rollout records (which
  tokens each turn generated), never from the text.

Either rollout can be laid out both ways (:func:`step_rows`, :func:`concatenated_rows`); the modulated
advantages agree because a step's tokens, entropies and trajectory are the same in both.

Rewards (verl-agent): ``win_reward · won`` on the last step and ``−invalid_penalty`` on every step
whose answer was invalid; a trajectory's outcome reward is the sum over its steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from scaled.projection import project_action
from scaled.prompts import build_prompt, followup_prompt

__all__ = [
    "RolloutConfig",
    "StepRecord",
    "Trajectory",
    "TrainRows",
    "collect_rollouts",
    "step_rows",
    "concatenated_rows",
    "chat_prompt_ids",
    "assistant_header_ids",
    "rollout_metrics",
]


@dataclass
class RolloutConfig:
    """How episodes are played and rewarded (defaults: verl-agent / the paper's setup, spec §6)."""

    max_steps: int = 50
    """Turns per episode (paper: ALFWorld 50, WebShop 15)."""
    max_new_tokens: int = 512
    """Response length per turn (paper: 512)."""
    history_length: int = 2
    """(observation, action) pairs shown in a step prompt (verl-agent default 2)."""
    layout: str = "step"
    """step (verl-agent, one row per step) or concat (one row per trajectory)."""
    max_context_tokens: int | None = None
    """concat layout: end the episode (truncated) once the conversation would exceed this many tokens."""
    win_reward: float = 10.0
    """Reward for winning, on the last step (verl-agent: 10 · won)."""
    invalid_penalty: float = 0.1
    """Subtracted on each step with an invalid answer (verl-agent: 0.1)."""
    require_think: bool = True
    """An answer without <think>…</think> is invalid (verl-agent)."""
    check_admissible: bool = False
    """A non-admissible action counts as invalid too (verl-agent: False; the env flags it either way)."""
    greedy: bool = False
    """Arg-max decoding instead of sampling (evaluation)."""

    def __post_init__(self) -> None:
        if self.layout not in ("step", "concat"):
            raise ValueError(f"layout must be 'step' or 'concat', got {self.layout!r}")
        for name in ("max_steps", "max_new_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.history_length < 0:
            raise ValueError(f"history_length must be >= 0, got {self.history_length}")


@dataclass
class StepRecord:
    """One turn of one trajectory.

    Attributes:
        step: index of the turn in its trajectory (0, 1, …).
        prompt_ids: the context the response was sampled from (step layout); empty for concat
            rollouts, whose context is the trajectory's conversation up to this turn.
        turn_ids: the tokens this turn adds to a concatenated conversation before the response:
            the first prompt for step 0, else ``\\n<|im_start|>user\\n{observation…}<|im_end|>\\n<|im_start|>assistant\\n``.
        response_ids: the generated tokens (``<|im_end|>`` included unless truncated).
        logprobs, entropies: ``[len(response_ids)]`` float32 from the sampling logits.
        truncated: the response hit ``max_new_tokens``.
        text, action, valid: the decoded response, the projected action and its validity.
        env_invalid: the environment's ``info["invalid_action"]`` for this action.
        reward: the shaped reward of this step.
        observation, admissible: what the agent saw.
    """

    step: int
    prompt_ids: list[int]
    turn_ids: list[int]
    response_ids: list[int]
    logprobs: torch.Tensor
    entropies: torch.Tensor
    truncated: bool
    text: str
    action: str
    valid: bool
    env_invalid: bool
    reward: float
    observation: str
    admissible: list[str]


@dataclass
class Trajectory:
    """One episode: its group (task), steps and outcome."""

    index: int
    group: int
    seed: int
    task: str
    task_type: str
    steps: list[StepRecord] = field(default_factory=list)
    won: bool = False
    env_return: float = 0.0
    """Sum of the environment's native rewards (WebShop: the score)."""

    @property
    def reward(self) -> float:
        """Outcome reward R: the sum of the shaped step rewards."""
        return float(sum(s.reward for s in self.steps))

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def num_invalid(self) -> int:
        return sum(not s.valid for s in self.steps)


# --------------------------------------------------------------------------- tokens
def _ids(encoded: Any) -> list[int]:
    if hasattr(encoded, "keys") and "input_ids" in encoded:
        encoded = encoded["input_ids"]
    if isinstance(encoded, torch.Tensor):
        encoded = encoded.tolist()
    if encoded and isinstance(encoded[0], list):
        encoded = encoded[0]
    return [int(t) for t in encoded]


def chat_prompt_ids(tokenizer, content: str) -> list[int]:
    """Token ids of a one-user-message chat with the assistant header appended."""
    return _ids(tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                              tokenize=True))


def assistant_header_ids(tokenizer) -> list[int]:
    """``<|im_start|>assistant\\n``: the delimiter that opens a step in a ChatML conversation."""
    return _ids(tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False))


def _followup_turn_ids(tokenizer, content: str) -> list[int]:
    return _ids(tokenizer.encode(f"\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",
                                 add_special_tokens=False))


# --------------------------------------------------------------------------- rollout
def collect_rollouts(
    policy,
    envs: Sequence[Any],
    *,
    seeds: Sequence[int],
    groups: Sequence[int],
    config: RolloutConfig,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> list[Trajectory]:
    """Play one episode in each environment, batching the generation across them.

    Args:
        policy: a :class:`scaled.policy.Policy`.
        envs: N text environments (``scaled.envs`` interface).
        seeds: N reset seeds (equal within a group: the same task).
        groups: N group ids (the GRPO groups).
        config: a :class:`RolloutConfig`.
        generator: torch RNG for sampling.
        progress: show a tqdm bar over turns.

    Returns:
        N :class:`Trajectory` in the order of ``envs``.
    """
    n = len(envs)
    if n == 0 or len(seeds) != n or len(groups) != n:
        raise ValueError(f"envs, seeds and groups must be non-empty and of equal length, got {n}, {len(seeds)}, {len(groups)}")
    tok = policy.tokenizer
    eos = policy.eos_id
    trajs, obs, infos, histories, contexts = [], [], [], [], []
    for i, env in enumerate(envs):
        o, info = env.reset(seed=int(seeds[i]))
        trajs.append(Trajectory(index=i, group=int(groups[i]), seed=int(seeds[i]), task=str(info.get("task", "")),
                                task_type=str(info.get("task_type", getattr(env, "name", "")))))
        obs.append(o)
        infos.append(info)
        histories.append([])
        contexts.append([])
    active = list(range(n))
    env_name = getattr(envs[0], "name", "textworld")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.max_steps, desc="rollout turns", leave=False)
    for t in range(config.max_steps):
        if not active:
            break
        prompts, turns, admissibles = [], [], []
        for i in active:
            admissible = list(infos[i].get("admissible_commands", []))
            admissibles.append(admissible)
            if config.layout == "step" or t == 0:
                content = build_prompt(env_name=env_name if env_name in ("alfworld", "webshop", "textworld") else "textworld",
                                       task=trajs[i].task, observation=obs[i], admissible=admissible,
                                       history=histories[i], history_length=config.history_length)
                turn = chat_prompt_ids(tok, content)
            else:
                turn = _followup_turn_ids(tok, followup_prompt(observation=obs[i], admissible=admissible))
            turns.append(turn)
            prompts.append(turn if config.layout == "step" else contexts[i] + turn)
        if config.layout == "concat" and config.max_context_tokens is not None:
            keep = [j for j, p in enumerate(prompts) if len(p) + config.max_new_tokens <= config.max_context_tokens]
            active = [active[j] for j in keep]
            prompts = [prompts[j] for j in keep]
            turns = [turns[j] for j in keep]
            admissibles = [admissibles[j] for j in keep]
            if not active:
                break
        gen = policy.generate(prompts, max_new_tokens=config.max_new_tokens, generator=generator, greedy=config.greedy)
        still = []
        for j, i in enumerate(active):
            resp = gen.response_ids[j]
            text = tok.decode(resp, skip_special_tokens=True)
            admissible = admissibles[j]
            action, valid = project_action(text, admissible, check_admissible=config.check_admissible,
                                           require_think=config.require_think)
            o2, r_env, terminated, truncated, info2 = envs[i].step(action)
            won = bool(info2.get("won", False))
            last = terminated or truncated or won or t == config.max_steps - 1
            reward = (0.0 if valid else -config.invalid_penalty) + (config.win_reward if (won and last) else 0.0)
            trajs[i].steps.append(StepRecord(
                step=t, prompt_ids=prompts[j] if config.layout == "step" else [], turn_ids=turns[j],
                response_ids=resp, logprobs=gen.logprobs[j], entropies=gen.entropies[j], truncated=gen.truncated[j],
                text=text, action=action, valid=valid, env_invalid=bool(info2.get("invalid_action", False)),
                reward=reward, observation=obs[i], admissible=admissible,
            ))
            trajs[i].env_return += float(r_env)
            trajs[i].won = won
            histories[i].append((obs[i], action))
            if config.layout == "concat":
                contexts[i] = contexts[i] + turns[j] + resp + ([eos] if gen.truncated[j] else [])
            obs[i], infos[i] = o2, info2
            if not last:
                still.append(i)
        active = still
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return trajs


# --------------------------------------------------------------------------- layouts
@dataclass
class TrainRows:
    """A padded training batch in one of the two layouts of spec §1.

    Attributes:
        layout: ``"steps"`` (one row per step) or ``"tokens"`` (one concatenated row per trajectory).
        input_ids, attention_mask: ``[B, L]``.
        start: first target position; per-token tensors below are ``[B, L - start]`` and refer to
            the tokens ``input_ids[:, start:]`` (each predicted from the tokens before it).
        loss_mask: ``[B, L - start]`` bool, True on generated tokens.
        rollout_logp, rollout_entropy: ``[B, L - start]`` values recorded at sampling time (0 elsewhere).
        step_ids: ``[B, L - start]`` step of each token (-1 = no step). Step rows: 0 on the response.
        trajectory, step: ``[B]`` for step rows (trajectory index into ``rewards``, step index); None otherwise.
        rewards, group: ``[N]`` outcome reward and group of each trajectory.
    """

    layout: str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    start: int
    loss_mask: torch.Tensor
    rollout_logp: torch.Tensor
    rollout_entropy: torch.Tensor
    step_ids: torch.Tensor
    rewards: torch.Tensor
    group: torch.Tensor
    trajectory: torch.Tensor | None = None
    step: torch.Tensor | None = None

    @property
    def num_rows(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, rows: torch.Tensor) -> "TrainRows":
        """The rows ``rows`` (rewards/group are kept whole: they are indexed by trajectory)."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return TrainRows(self.layout, self.input_ids[rows], self.attention_mask[rows], self.start, self.loss_mask[rows],
                         self.rollout_logp[rows], self.rollout_entropy[rows], self.step_ids[rows], self.rewards,
                         self.group, pick(self.trajectory), pick(self.step))


def _outcomes(trajs: Sequence[Trajectory]) -> tuple[torch.Tensor, torch.Tensor]:
    rewards = torch.tensor([t.reward for t in trajs], dtype=torch.float32)
    group = torch.tensor([t.group for t in trajs], dtype=torch.long)
    return rewards, group


def step_rows(trajs: Sequence[Trajectory], pad_id: int) -> TrainRows:
    """One row per step (verl-agent): ``[pad… prompt | response …pad]``, prompts left-, responses right-padded.

    Needs step-layout rollouts (each step's ``prompt_ids``).
    """
    steps = [(i, s) for i, tr in enumerate(trajs) for s in tr.steps]
    if not steps:
        raise ValueError("trajs have no steps")
    if any(not s.prompt_ids for _, s in steps):
        raise ValueError("step_rows needs step-layout rollouts (RolloutConfig.layout='step'): a step has no prompt_ids")
    p_len = max(len(s.prompt_ids) for _, s in steps)
    r_len = max(len(s.response_ids) for _, s in steps)
    b = len(steps)
    ids = torch.full((b, p_len + r_len), pad_id, dtype=torch.long)
    att = torch.zeros((b, p_len + r_len), dtype=torch.long)
    loss = torch.zeros((b, r_len), dtype=torch.bool)
    lp = torch.zeros((b, r_len))
    ent = torch.zeros((b, r_len))
    for row, (_, s) in enumerate(steps):
        p, r = len(s.prompt_ids), len(s.response_ids)
        ids[row, p_len - p : p_len] = torch.tensor(s.prompt_ids)
        ids[row, p_len : p_len + r] = torch.tensor(s.response_ids)
        att[row, p_len - p : p_len + r] = 1
        loss[row, :r] = True
        lp[row, :r] = s.logprobs
        ent[row, :r] = s.entropies
    rewards, group = _outcomes(trajs)
    return TrainRows(
        layout="steps", input_ids=ids, attention_mask=att, start=p_len, loss_mask=loss, rollout_logp=lp,
        rollout_entropy=ent, step_ids=torch.where(loss, 0, -1), rewards=rewards, group=group,
        trajectory=torch.tensor([i for i, _ in steps]), step=torch.tensor([s.step for _, s in steps]),
    )


def concatenated_rows(trajs: Sequence[Trajectory], pad_id: int, eos_id: int) -> TrainRows:
    """One row per trajectory: the chat ``turn_0 resp_0 turn_1 resp_1 …``, right-padded.

    Step ids come from the rollout records, not from the text: every token of ``s.response_ids`` gets
    the index of its turn in the row (0, 1, …), and the turn tokens (prompt, observations) and the
    ``<|im_end|>`` appended to close a truncated response get -1 (not generated). Matching the
    delimiters with :func:`empg.step_ids_from_delimiters` would agree on well-formed turns but
    mis-number every later step, and drop tokens from the loss, when a response itself contains the
    assistant header tokens (a policy that hallucinates a new turn).
    """
    if not trajs or all(not t.steps for t in trajs):
        raise ValueError("trajs have no steps")
    rows, gens, lps, ents = [], [], [], []
    for tr in trajs:
        ids, gen, lp, en = [], [], [], []
        for t, s in enumerate(tr.steps):
            ids += s.turn_ids
            gen += [-1] * len(s.turn_ids)
            lp += [0.0] * len(s.turn_ids)
            en += [0.0] * len(s.turn_ids)
            ids += s.response_ids
            gen += [t] * len(s.response_ids)
            lp += s.logprobs.tolist()
            en += s.entropies.tolist()
            if s.truncated:
                ids.append(eos_id)
                gen.append(-1)
                lp.append(0.0)
                en.append(0.0)
        rows.append(ids)
        gens.append(gen)
        lps.append(lp)
        ents.append(en)
    length = max(len(r) for r in rows)
    b = len(rows)
    ids_t = torch.full((b, length), pad_id, dtype=torch.long)
    att = torch.zeros((b, length), dtype=torch.long)
    step_ids = torch.full((b, length), -1, dtype=torch.long)
    lp_t = torch.zeros((b, length))
    ent_t = torch.zeros((b, length))
    for i in range(b):
        n = len(rows[i])
        ids_t[i, :n] = torch.tensor(rows[i], dtype=torch.long)
        att[i, :n] = 1
        step_ids[i, :n] = torch.tensor(gens[i], dtype=torch.long)
        lp_t[i, :n] = torch.tensor(lps[i])
        ent_t[i, :n] = torch.tensor(ents[i])
    rewards, group = _outcomes(trajs)
    return TrainRows(
        layout="tokens", input_ids=ids_t, attention_mask=att, start=1, loss_mask=(step_ids >= 0)[:, 1:],
        rollout_logp=lp_t[:, 1:], rollout_entropy=ent_t[:, 1:], step_ids=step_ids[:, 1:], rewards=rewards, group=group,
    )


def rollout_metrics(trajs: Sequence[Trajectory], prefix: str = "rollout") -> dict[str, float]:
    """Success (overall and per task type), score, episode length, invalid-action rates."""
    n = len(trajs)
    steps = [s for t in trajs for s in t.steps]
    out = {
        "charts/success_rate": sum(t.won for t in trajs) / n,
        "charts/score": sum(t.reward for t in trajs) / n,
        "charts/env_return": sum(t.env_return for t in trajs) / n,
        "charts/episode_length": sum(t.length for t in trajs) / n,
        f"{prefix}/invalid_answer_rate": sum(not s.valid for s in steps) / max(1, len(steps)),
        f"{prefix}/env_invalid_action_rate": sum(s.env_invalid for s in steps) / max(1, len(steps)),
        f"{prefix}/truncated_response_rate": sum(s.truncated for s in steps) / max(1, len(steps)),
        f"{prefix}/response_length": sum(len(s.response_ids) for s in steps) / max(1, len(steps)),
        f"{prefix}/num_trajectories": float(n),
        f"{prefix}/num_steps": float(len(steps)),
    }
    for tt in sorted({t.task_type for t in trajs}):
        sel = [t for t in trajs if t.task_type == tt]
        out[f"success/{tt}"] = sum(t.won for t in sel) / len(sel)
    return out
