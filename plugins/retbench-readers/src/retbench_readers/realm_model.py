"""REALM's extractive reader (Guu et al., 2020, section 3.4) as a torch module.

Each retrieved passage z is read together with the question x by a BERT-family encoder; a span
s of z scores MLP([h_start(s); h_end(s)]) and p(s | z, x) is the softmax over every span of z
up to ``max_answer_tokens`` long. The answer probability marginalises over passages weighted
by the retriever, p(y | x) = sum_z p(y | z, x) p(z | x), with p(z | x) the softmax of the
retrieval scores; p(y | z, x) sums the spans of z whose text is y. The optional null passage
(REALM's empty document) takes part in p(z | x) with a learned logit and contains no span.
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
                 null_passage: bool = True) -> None:
        super().__init__()
        size = encoder.config.hidden_size
        self.encoder = encoder
        self.start_proj = torch.nn.Linear(size, hidden)
        self.end_proj = torch.nn.Linear(size, hidden, bias=False)
        self.out = torch.nn.Linear(hidden, 1)
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
        logits = self.out(pair).squeeze(-1)
        mask = batch.passage_mask.bool()
        valid = mask[:, :, None] & mask[:, end_index] & (index[:, None] + torch.arange(width, device=hidden.device)
                                                         < length)[None]
        return logits.masked_fill(~valid, float("-inf"))

    def passage_log_prior(self, retrieval_scores: torch.Tensor) -> torch.Tensor:
        """log p(z | x) over the passages (and the null passage last, when enabled)."""
        if self.null_logit is not None:
            retrieval_scores = torch.cat([retrieval_scores, self.null_logit[None]])
        return torch.log_softmax(retrieval_scores, dim=0)

    def marginal_log_likelihood(self, batch: Encoded, retrieval_scores: torch.Tensor,
                                gold_spans: torch.Tensor) -> torch.Tensor:
        """log p(y | x) where ``gold_spans`` (same shape as the span logits) marks every span
        whose text matches a gold answer (distant supervision)."""
        logits = self.span_logits(batch)
        flat = logits.flatten(1)
        log_p_span = flat - torch.logsumexp(flat, dim=1, keepdim=True)
        gold = gold_spans.flatten(1)
        log_p_answer = torch.logsumexp(log_p_span.masked_fill(~gold, float("-inf")), dim=1)  # per passage
        prior = self.passage_log_prior(retrieval_scores)
        if self.null_logit is not None:
            log_p_answer = torch.cat([log_p_answer, log_p_answer.new_full((1,), float("-inf"))])
        return torch.logsumexp(prior + log_p_answer, dim=0)
