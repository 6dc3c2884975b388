"""The two training layouts of spec §1, built from rollout episodes.

* :func:`step_rows` (verl-agent): **one row per step**, ``[pad… prompt | response …pad]``. Needs
  step-layout rollouts (each step's own prompt).
* :func:`concatenated_rows` (RAGEN / multi-turn chat): **one row per trajectory**, the conversation
  ``turn_0 resp_0 turn_1 resp_1 …``, with step ids taken from the rollout records (which tokens each
  turn generated), never from the text.

Either rollout can be laid out both ways as long as it has the tokens each layout needs; the
modulated advantages agree because a step's tokens, entropies and trajectory are the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from scaled.agent import Episode

__all__ = ["TrainRows", "step_rows", "concatenated_rows", "trim_padding"]


@dataclass
class TrainRows:
    """A padded training batch in one of the two layouts of spec §1.

    Attributes:
        layout: ``"steps"`` (one row per step) or ``"tokens"`` (one concatenated row per trajectory).
        input_ids, attention_mask: ``[B, L]``.
        start: first target position; per-token tensors below are ``[B, L - start]`` and refer to
            the tokens ``input_ids[:, start:]`` (each predicted from the tokens before it).
        loss_mask: ``[B, L - start]`` bool, True on generated tokens.
        rollout_logp, rollout_entropy: ``[B, L - start]`` values recorded at sampling time (0 elsewhere;
            rollout_entropy is NaN on the tokens of a sampler that reports no entropies).
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
        """Rows in the batch (``input_ids.shape[0]``: one per trajectory or per step, by layout)."""
        return int(self.input_ids.shape[0])

    def select(self, rows: torch.Tensor) -> "TrainRows":
        """The rows ``rows`` (rewards/group are kept whole: they are indexed by trajectory)."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return TrainRows(self.layout, self.input_ids[rows], self.attention_mask[rows], self.start, self.loss_mask[rows],
                         self.rollout_logp[rows], self.rollout_entropy[rows], self.step_ids[rows], self.rewards,
                         self.group, pick(self.trajectory), pick(self.step))


def trim_padding(rows: TrainRows) -> TrainRows:
    """Drop all-padding columns on the left (prompt side) and right of a (micro-)batch."""
    att = rows.attention_mask
    cols = torch.nonzero(att.any(0)).squeeze(-1)
    left, right = int(cols.min()), int(cols.max()) + 1
    left = min(left, rows.start - 1)
    right = max(right, rows.start + 1)
    k = right - rows.start
    cut = lambda t: None if t is None else t[:, :k]  # noqa: E731
    return TrainRows(rows.layout, rows.input_ids[:, left:right], att[:, left:right], rows.start - left,
                     cut(rows.loss_mask), cut(rows.rollout_logp), cut(rows.rollout_entropy), cut(rows.step_ids),
                     rows.rewards, rows.group, rows.trajectory, rows.step)


def _outcomes(episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor]:
    rewards = torch.tensor([e.reward for e in episodes], dtype=torch.float32)
    group = torch.tensor([e.group for e in episodes], dtype=torch.long)
    return rewards, group


def _values(tensor: torch.Tensor | None, what: str) -> torch.Tensor:
    if tensor is None:
        raise ValueError(f"a step has no {what}: training needs the sampler's per-token values")
    return tensor


def _entropies(step) -> torch.Tensor:
    """The sampler's entropies of a step, or NaN placeholders when it reported none (vLLM with
    ``entropies="none"``: the trainer's teacher-forced pass computes them; nothing reads these NaNs)."""
    if step.entropies is None:
        return torch.full((len(step.response_ids),), float("nan"))
    return step.entropies


def step_rows(episodes: Sequence[Episode], pad_id: int) -> TrainRows:
    """One row per step (verl-agent): ``[pad… prompt | response …pad]``, prompts left-, responses right-padded.

    Needs step-layout rollouts (each step's ``prompt_ids``).
    """
    steps = [(i, s) for i, e in enumerate(episodes) for s in e.steps]
    if not steps:
        raise ValueError("episodes have no steps")
    if any(not s.prompt_ids for _, s in steps):
        raise ValueError("step_rows needs step-layout rollouts (agent.layout='step'): a step has no prompt_ids")
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
        lp[row, :r] = _values(s.logprobs, "logprobs")
        ent[row, :r] = _entropies(s)
    rewards, group = _outcomes(episodes)
    return TrainRows(
        layout="steps", input_ids=ids, attention_mask=att, start=p_len, loss_mask=loss, rollout_logp=lp,
        rollout_entropy=ent, step_ids=torch.where(loss, 0, -1), rewards=rewards, group=group,
        trajectory=torch.tensor([i for i, _ in steps]), step=torch.tensor([s.step for _, s in steps]),
    )


def concatenated_rows(episodes: Sequence[Episode], pad_id: int, eos_id: int) -> TrainRows:
    """One row per trajectory: the chat ``turn_0 resp_0 turn_1 resp_1 …``, right-padded.

    Step ids come from the rollout records, not from the text: every token of ``s.response_ids`` gets
    the index of its turn in the row (0, 1, …), and the turn tokens (prompt, observations) and the
    ``<|im_end|>`` appended to close a truncated response get -1 (not generated). Matching the
    delimiters with :func:`empg.step_ids_from_delimiters` would agree on well-formed turns but
    mis-number every later step, and drop tokens from the loss, when a response itself contains the
    assistant header tokens (a policy that hallucinates a new turn).
    """
    if not episodes or all(not e.steps for e in episodes):
        raise ValueError("episodes have no steps")
    rows, gens, lps, ents = [], [], [], []
    for e in episodes:
        ids, gen, lp, en = [], [], [], []
        for t, s in enumerate(e.steps):
            n_turn, n_resp = len(s.turn_ids), len(s.response_ids)
            ids += s.turn_ids + s.response_ids
            gen += [-1] * n_turn + [t] * n_resp
            lp += [0.0] * n_turn + _values(s.logprobs, "logprobs").tolist()
            en += [0.0] * n_turn + _entropies(s).tolist()
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
    rewards, group = _outcomes(episodes)
    return TrainRows(
        layout="tokens", input_ids=ids_t, attention_mask=att, start=1, loss_mask=(step_ids >= 0)[:, 1:],
        rollout_logp=lp_t[:, 1:], rollout_entropy=ent_t[:, 1:], step_ids=step_ids[:, 1:], rewards=rewards, group=group,
    )
