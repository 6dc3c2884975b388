"""The built-in sampler: token-by-token decoding of the policy's own transformers model.

Batched, left padding, KV cache. For every generated token it records the log-prob and the entropy of
the **same float32 logits it was sampled from** (``logits / T``; entropy by :func:`empg.token_entropy`).

No per-token host synchronisation on a GPU: the attention mask is preallocated for the whole response
(one column is written per token, nothing is re-concatenated) and whether every row has finished is
read back only every ``finish_check_every`` tokens (default 16 on CUDA), together with a check that
the logits were finite; tokens are drawn as ``argmax(p / q)`` with ``q ~ Exp(1)``, which is what
``torch.multinomial(p, 1)`` computes (same samples for the same generator) minus its per-call
host-side validity check. Rows that finished keep
producing padding until the next check, which changes nothing in the result except how far the
generator's state advanced; on CPU the check is free and runs every token (default 1), so that
results for a given seed are those of the plain loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

import empg
from scaled.sampling import Sampler

if TYPE_CHECKING:  # pragma: no cover
    from scaled.policy import Generation, Policy

__all__ = ["HFSampler"]


class HFSampler(Sampler):
    """Sample with the policy's transformers model (the ``hf`` backend).

    Args:
        policy: the :class:`scaled.policy.Policy` whose model, tokenizer ids and temperature are used
            (read at every call: changing ``policy.temperature`` takes effect at once).
        finish_check_every: read the all-rows-finished flag back to the host every this many tokens
            (None: 1 on CPU, 16 on CUDA).
    """

    name = "hf"
    reports_entropies = True

    def __init__(self, policy: "Policy", *, finish_check_every: int | None = None) -> None:
        if finish_check_every is not None and (isinstance(finish_check_every, bool) or not isinstance(finish_check_every, int)
                                               or finish_check_every < 1):
            raise ValueError(f"finish_check_every must be an int >= 1 or None, got {finish_check_every!r}")
        self.policy = policy
        self.finish_check_every = finish_check_every

    def sync_weights(self) -> dict[str, float]:
        """Nothing to do: this sampler runs the policy's own parameters."""
        return {}

    @torch.no_grad()
    def _generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                  generator: torch.Generator | None, greedy: bool) -> "Generation":
        """Decode token by token with the policy's model (:meth:`scaled.sampling.Sampler.generate`)."""
        from scaled.policy import Generation, _positions, left_pad

        pol = self.policy
        model = pol.model
        was_training = model.training
        model.eval()
        device = pol.device
        every = self.finish_check_every or (16 if device.type == "cuda" else 1)
        ids, prompt_mask = left_pad(prompts, pol.pad_id, device)
        b, width = ids.shape
        # The whole mask, allocated once: column width + t is written when token t is fed back.
        mask = torch.zeros((b, width + max_new_tokens), dtype=torch.long, device=device)
        mask[:, :width] = prompt_mask
        finished = torch.zeros(b, dtype=torch.bool, device=device)
        bad = torch.zeros(b, dtype=torch.bool, device=device)
        pad = torch.full((b,), pol.pad_id, dtype=torch.long, device=device)
        toks, logps, ents = [], [], []
        pos = _positions(prompt_mask)
        temperature = pol.temperature
        try:
            with pol.autocast():
                out = model(input_ids=ids, attention_mask=prompt_mask, position_ids=pos, use_cache=True, logits_to_keep=1)
            past = out.past_key_values
            last_pos = pos[:, -1:]
            for t in range(max_new_tokens):
                z = out.logits[:, -1].float() / temperature
                logp_all = torch.log_softmax(z, dim=-1)
                bad |= ~torch.isfinite(logp_all).all(-1)
                if greedy:
                    tok = z.argmax(-1)
                else:
                    # torch.multinomial(p, 1) draws exactly this (argmax p / q, q ~ Exp(1): the same
                    # samples for the same generator), without its host-side validity check.
                    q = torch.empty_like(logp_all).exponential_(1.0, generator=generator)
                    tok = logp_all.exp().div_(q).argmax(-1)
                tok = torch.where(finished, pad, tok)
                toks.append(tok)
                logps.append(logp_all.gather(-1, tok.unsqueeze(-1)).squeeze(-1))
                ents.append(empg.token_entropy(z, chunk_bytes=pol.entropy_chunk_bytes))
                mask[:, width + t] = (~finished).long()
                finished = finished | (tok == pol.eos_id)
                if t == max_new_tokens - 1 or (t + 1) % every == 0:
                    if bool(bad.any()):  # one host sync per check, not per token
                        raise FloatingPointError("non-finite logits while sampling (NaN/inf in the model's output)")
                    if t == max_new_tokens - 1 or bool(finished.all()):
                        break
                last_pos = last_pos + 1
                with pol.autocast():
                    out = model(input_ids=tok.unsqueeze(-1), attention_mask=mask[:, : width + t + 1],
                                position_ids=last_pos, past_key_values=past, use_cache=True)
                past = out.past_key_values
        finally:
            model.train(was_training)
        tok_mat = torch.stack(toks, 1).cpu()
        lp_mat = torch.stack(logps, 1).cpu()
        ent_mat = torch.stack(ents, 1).cpu()
        result = Generation()
        for i in range(b):
            row = tok_mat[i].tolist()
            n = row.index(pol.eos_id) + 1 if pol.eos_id in row else len(row)
            result.response_ids.append(row[:n])
            result.logprobs.append(lp_mat[i, :n].clone())
            result.entropies.append(ent_mat[i, :n].clone())
            result.truncated.append(pol.eos_id not in row)
        return result
