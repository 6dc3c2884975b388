"""Rollout and batch layouts on the real (shipped) ALFWorld games with a tiny random-init transformer."""

import pytest
import torch

import empg
from scaled.agent import AgentConfig
from scaled.batch import concatenated_rows, step_rows
from scaled.policy import load_policy
from scaled.rollout import RolloutConfig, collect_rollouts
from scaled.tiny import build_tiny_model


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return load_policy(str(build_tiny_model(tmp_path_factory.getbasetemp() / "tiny")), reference="none")


@pytest.fixture(scope="module")
def envs():
    from scaled.envs import make_env

    return [make_env("alfworld", max_steps=3) for _ in range(4)]


def _rollout(policy, envs, layout):
    return collect_rollouts(policy, envs, seeds=[5, 5, 6, 6], groups=[0, 0, 1, 1],
                            agent=AgentConfig(max_steps=3, layout=layout), config=RolloutConfig(max_new_tokens=10),
                            generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def step_trajs(policy, envs):
    return _rollout(policy, envs, "step")


@pytest.fixture(scope="module")
def concat_trajs(policy, envs):
    return _rollout(policy, envs, "concat")


def test_groups_share_a_task_and_rewards_follow_the_convention(step_trajs):
    assert step_trajs[0].task == step_trajs[1].task and step_trajs[2].task == step_trajs[3].task
    for tr in step_trajs:
        assert 1 <= tr.length <= 3 and [s.step for s in tr.steps] == list(range(tr.length))
        # verl-agent: -0.1 per invalid answer, +10 if won (on the last step).
        assert tr.reward == pytest.approx(-0.1 * tr.num_invalid + 10.0 * tr.won)


def test_step_rows_hold_exactly_the_generated_tokens(step_trajs, policy):
    rows = step_rows(step_trajs, policy.pad_id)
    steps = [(i, s) for i, t in enumerate(step_trajs) for s in t.steps]
    assert rows.num_rows == len(steps)
    for r, (i, s) in enumerate(steps):
        assert int(rows.trajectory[r]) == i and int(rows.step[r]) == s.step
        resp = rows.input_ids[r, rows.start:][rows.loss_mask[r]].tolist()
        assert resp == s.response_ids
        prompt = rows.input_ids[r, : rows.start][rows.attention_mask[r, : rows.start].bool()].tolist()
        assert prompt == s.prompt_ids


def test_concatenated_step_ids_line_up_with_generated_tokens(concat_trajs, policy):
    rows = concatenated_rows(concat_trajs, policy.pad_id, policy.eos_id)
    tokens = rows.input_ids[:, 1:]
    for i, tr in enumerate(concat_trajs):
        for s in tr.steps:
            assert tokens[i][rows.step_ids[i] == s.step].tolist() == s.response_ids
        assert int(rows.step_ids[i].max()) == tr.length - 1
    # Without the generated-token mask the delimiter ids only differ on the <|im_end|> closing a truncated turn.
    n_gen = sum(len(s.response_ids) for t in concat_trajs for s in t.steps)
    assert int(rows.loss_mask.sum()) == n_gen


def _manual_entropy(logits):
    logp = torch.log_softmax(logits.double(), -1)
    return -(logp.exp() * logp).sum(-1)


def test_rollout_entropies_match_a_recomputation_from_the_logits(step_trajs, policy):
    s = step_trajs[0].steps[1] if step_trajs[0].length > 1 else step_trajs[0].steps[0]
    ids = torch.tensor([s.prompt_ids + s.response_ids])
    with torch.no_grad():
        logits = policy.model(input_ids=ids).logits[0, len(s.prompt_ids) - 1 : -1]
    ent = _manual_entropy(logits)  # plain float64 -sum p log p, not empg.token_entropy
    logp = torch.log_softmax(logits.double(), -1).gather(-1, torch.tensor(s.response_ids)[:, None]).squeeze(-1)
    # float32 sampling with a KV cache vs one float64 forward: agree to ~1e-5.
    torch.testing.assert_close(s.entropies.double(), ent, atol=1e-4, rtol=0)
    torch.testing.assert_close(s.logprobs.double(), logp, atol=1e-4, rtol=0)


@pytest.mark.parametrize("layout", ["step", "concat"])
def test_teacher_forced_batch_recomputation_matches_rollout(step_trajs, concat_trajs, policy, layout):
    trajs = step_trajs if layout == "step" else concat_trajs
    rows = step_rows(trajs, policy.pad_id) if layout == "step" else concatenated_rows(
        trajs, policy.pad_id, policy.eos_id)
    with torch.no_grad():
        lp, ent = policy.token_logprobs(rows.input_ids, rows.attention_mask, start=rows.start, with_entropy=True)
    m = rows.loss_mask
    torch.testing.assert_close(ent[m], rows.rollout_entropy[m], atol=1e-4, rtol=0)
    torch.testing.assert_close(lp[m], rows.rollout_logp[m], atol=1e-4, rtol=0)


def test_both_layouts_give_the_same_modulated_advantages(step_trajs, policy):
    srows = step_rows(step_trajs, policy.pad_id)
    crows = concatenated_rows(step_trajs, policy.pad_id, policy.eos_id)
    rewards = torch.tensor([10.0, -0.2, 9.9, -0.3])  # distinct outcomes so GRPO advantages are non-zero
    group = srows.group
    m = srows.loss_mask
    # float64 means, as the concatenated path (empg) computes them: near-uniform random-model entropies
    # have a tiny range, so Eq. 12 would amplify float32 rounding.
    step_h = (srows.rollout_entropy.double() * m).sum(-1) / m.sum(-1)
    kw = dict(variant="full", outcome="grpo", k=1.0, k_f=1.0, zeta=0.1)
    a_steps = empg.compute_advantages("empg", empg.AdvantageInputs(
        rewards, group, step_entropy=step_h, trajectory=srows.trajectory, step=srows.step), **kw)
    a_tok = empg.compute_advantages("empg", empg.AdvantageInputs(
        rewards, group, token_entropy=crows.rollout_entropy, step_ids=crows.step_ids), **kw)
    for r in range(srows.num_rows):
        i, t = int(srows.trajectory[r]), int(srows.step[r])
        vals = a_tok[i][crows.step_ids[i] == t]
        torch.testing.assert_close(vals, torch.full_like(vals, float(a_steps[r])), atol=1e-5, rtol=0)
    assert a_steps.abs().max() > 0.1


def test_step_rows_refuse_concat_rollouts(concat_trajs, policy):
    with pytest.raises(ValueError, match="step-layout"):
        step_rows(concat_trajs, policy.pad_id)


def _record(t, turn, resp, *, truncated=False):
    from scaled.agent import StepRecord

    return StepRecord(step=t, prompt="", text="", action="", valid=False, env_invalid=False, reward=0.0, observation="",
                      admissible=[], prompt_ids=turn, turn_ids=turn, response_ids=resp, logprobs=torch.zeros(len(resp)),
                      entropies=torch.ones(len(resp)), truncated=truncated)


def test_concatenated_step_ids_come_from_the_records_not_the_delimiters(policy):
    # A response that itself contains the assistant header (a policy hallucinating a new turn) must stay
    # one step; matching delimiters would split it, drop the header tokens from the loss and number the
    # next turn 2 instead of 1.
    from scaled.agent import Episode, assistant_header_ids, chat_prompt_ids, followup_turn_ids

    tok, eos = policy.tokenizer, policy.eos_id
    enc = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
    r0 = enc("<think>a</think>") + assistant_header_ids(tok) + enc("x") + [eos]
    r1 = enc("<action>b</action>")  # truncated: no <|im_end|>, one is appended outside the step
    tr = Episode(task="", task_type="", steps=[
        _record(0, chat_prompt_ids(tok, "task"), r0), _record(1, followup_turn_ids(tok, "obs"), r1, truncated=True)])
    rows = concatenated_rows([tr], policy.pad_id, eos)
    tokens = rows.input_ids[0, 1:]
    assert tokens[rows.step_ids[0] == 0].tolist() == r0
    assert tokens[rows.step_ids[0] == 1].tolist() == r1
    assert int(rows.step_ids[0].max()) == 1
    assert int(rows.loss_mask.sum()) == len(r0) + len(r1)  # every generated token, nothing else
    assert int(rows.input_ids[0, -1]) == eos and int(rows.step_ids[0, -1]) == -1  # the appended <|im_end|>
