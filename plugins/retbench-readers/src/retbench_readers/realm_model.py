"""REALM's extractive reader (Guu et al., 2020, section 3.4) as a torch module.

Each retrieved passage z is read together with the question x by a BERT-family encoder; a span
s of z scores MLP([h_start(s); h_end(s)]) and p(s | z, x) is the softmax over every span of z
up to ``max_answer_tokens`` long. The answer probability marginalises over passages weighted
by the retriever, p(y | x) = sum_z p(y | z, x) p(z | x), with p(z | x) the softmax of the
retrieval scores; p(y | z, x) sums the spans of z whose text is y.

Normalisation ``joint`` (ORQA's code, orqa_model.py read/compute_loss) adds the retrieval logit to
every span logit of its passage and takes one softmax over all (passage, span) pairs;
``per-passage`` is the paper's factorisation p(z | x) p(s | z, x). The span MLP is
w . LayerNorm(relu(W_s h_s + W_e h_e)) as in ORQA. The optional null passage (REALM's empty
document, example_generator.py) is read like any passage (question + empty text); its only
candidate span is the [CLS] position, never a gold answer, and its retrieval logit is learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Encoded:
    """A (question, passages) group after tokenisation; ``spans`` maps token spans to text."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None
    passage_mask: torch.Tensor  # 1 on the passage's own tokens (answers come only from there)
    offsets: list[list[tuple[int, int]]]
    texts: list[str]


class SpanReader(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module, *, hidden: int = 256, max_answer_tokens: int = 10,
                 null_passage: bool = True, normalisation: str = "joint", layer_norm: bool = True) -> None:
        super().__init__()
        size = encoder.config.hidden_size
        self.encoder = encoder
        self.start_proj = torch.nn.Linear(size, hidden)
        self.end_proj = torch.nn.Linear(size, hidden, bias=False)
        self.norm = torch.nn.LayerNorm(hidden) if layer_norm else None
        self.out = torch.nn.Linear(hidden, 1)
        if normalisation not in ("joint", "per-passage"):
            raise ValueError(f"normalisation must be 'joint' or 'per-passage', not {normalisation!r}")
        self.normalisation = normalisation
        self.max_answer_tokens = max_answer_tokens
        self.null_logit = torch.nn.Parameter(torch.zeros(())) if null_passage else None

    def span_logits(self, batch: Encoded) -> torch.Tensor:
        """(passages, length, max_answer_tokens) scores; invalid spans are -inf. Entry
        [p, i, w] is the span from token i to token i + w of passage p."""
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        starts, ends = self.start_proj(hidden), self.end_proj(hidden)
        length, width = hidden.shape[1], self.max_answer_tokens
        index = torch.arange(length, device=hidden.device)
        end_index = (index[:, None] + torch.arange(width, device=hidden.device)[None, :]).clamp(max=length - 1)
        pair = torch.relu(starts[:, :, None, :] + ends[:, end_index, :])  # (P, L, W, hidden)
        if self.norm is not None:
            pair = self.norm(pair)
        logits = self.out(pair).squeeze(-1)
        mask = batch.passage_mask.bool()
        valid = mask[:, :, None] & mask[:, end_index] & (index[:, None] + torch.arange(width, device=hidden.device)
                                                         < length)[None]
        return logits.masked_fill(~valid, float("-inf"))

    def span_log_probs(self, batch: Encoded, retrieval_scores: torch.Tensor) -> torch.Tensor:
        """log p(z, s | x) for every (passage, span), shape of the span logits. When the null
        passage is enabled, ``batch`` holds it as its last row and ``retrieval_scores`` does not."""
        logits = self.span_logits(batch)
        prior_scores = retrieval_scores
        if self.null_logit is not None:
            prior_scores = torch.cat([retrieval_scores, self.null_logit[None]])
        if prior_scores.shape[0] != logits.shape[0]:
            raise ValueError(f"{logits.shape[0]} passages read but {prior_scores.shape[0]} retrieval scores")
        if self.normalisation == "joint":
            joint = logits + prior_scores[:, None, None]
            return joint - torch.logsumexp(joint.flatten(), dim=0)
        log_span = logits.flatten(1).log_softmax(dim=1).view_as(logits)
        return log_span + torch.log_softmax(prior_scores, dim=0)[:, None, None]

    def marginal_log_likelihood(self, batch: Encoded, retrieval_scores: torch.Tensor,
                                gold_spans: torch.Tensor) -> torch.Tensor:
        """log p(y | x) where ``gold_spans`` (same shape as the span logits) marks every span
        whose text matches a gold answer (distant supervision)."""
        log_p = self.span_log_probs(batch, retrieval_scores)
        return torch.logsumexp(log_p.flatten().masked_fill(~gold_spans.flatten(), float("-inf")), dim=0)
