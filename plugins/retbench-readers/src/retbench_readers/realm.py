"""The ``realm`` reader: REALM's extractive span reader over the retrieved passages.

Inference keeps the ``top_spans`` best spans of each passage, adds up p(z | x) p(s | z, x) of
spans with the same normalised text and answers with the most probable one. Training
(``fit``, ``retbench train --reader realm``) maximises the marginal likelihood of the gold
answers over the retriever's top ``train_k`` passages of each training question; every span
whose text is a gold answer counts (distant supervision), questions with no such span in their
passages are skipped and counted. ``span_normalisation`` is ``joint`` (ORQA's code, default) or
``per-passage`` (the paper's formula, version 1's behaviour); ``null_passage`` is ``none``
(default: ORQA's fine-tuning code, which REALM fine-tunes with, has no null document) or
``empty`` (REALM pre-training's empty document, example_generator.py, read by the reader). The starting encoder is a BERT-family model (offline:
all-MiniLM-L6-v2); the span head starts random.

With a dense retriever that offers it (``trainable_query_encoder``, ``neighbours``,
``use_query_encoder``), ``query_encoder="auto"`` also trains the retriever's query tower as
ORQA's fine-tuning does (orqa_model.py retrieve / compute_loss): each step searches the fixed
passage vectors with the current tower for the top ``retriever_beam_size`` passages; the
retrieval logits q . d (divided by ``retrieval_temperature``) enter the reader's joint softmax
over its top ``train_k``, and ORQA's early-update loss (the marginal likelihood of the
answer-bearing passages under a softmax over the whole beam, ``retriever_loss``) is added. The
trained tower is saved with the reader, and the run's searches use it afterwards; the index is
not rebuilt. ``query_encoder="fixed"`` trains the reader alone.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retbench import Answer, Component, ConfigError, DatasetSplit, Injection, Passage, Queries, normalize_answer, track
from retbench_readers.one_model import OneModel

AUTO = "auto"
NULL_PASSAGES = ("empty", "none")
NORMALISATIONS = ("joint", "per-passage")
QUERY_ENCODER = ("auto", "train", "fixed")
QUERY_TRAINING = ("trainable_query_encoder", "neighbours", "use_query_encoder")  # what a retriever offers for it


class RealmReader(OneModel, Component):
    name = "realm"
    hub_model = "sentence-transformers/all-MiniLM-L6-v2"
    offline_model = "offline:all-minilm-l6-v2"
    version = "2"
    injector = "in-context"
    late_params = ("query_encoder", "retriever_beam_size", "retriever_loss")

    def __init__(
        self,
        model: str = AUTO,
        k: int = 5,
        max_length: int = 256,
        max_answer_tokens: int = 10,
        top_spans: int = 10,
        null_passage: str = "none",
        span_normalisation: str = "joint",
        span_layer_norm: bool = True,
        span_hidden: int = 256,
        retrieval_temperature: float = 1.0,
        train_k: int = 5,
        epochs: int = 1,
        questions_per_step: int = 4,
        learning_rate: float = 3e-5,
        warmup_ratio: float = 0.1,
        max_steps: int | None = None,
        device: str = AUTO,
        query_encoder: str = AUTO,
        retriever_beam_size: int = 5000,
        retriever_loss: bool = True,
    ) -> None:
        self.model = model
        self.k = k
        self.max_length = max_length
        self.max_answer_tokens = max_answer_tokens
        self.top_spans = top_spans
        if null_passage not in NULL_PASSAGES:
            raise ConfigError(f"realm: null_passage must be one of {', '.join(NULL_PASSAGES)}, not {null_passage!r}")
        if span_normalisation not in NORMALISATIONS:
            raise ConfigError(f"realm: span_normalisation must be one of {', '.join(NORMALISATIONS)}, "
                              f"not {span_normalisation!r}")
        self.null_passage = null_passage
        self.span_normalisation = span_normalisation
        self.span_layer_norm = span_layer_norm
        self.span_hidden = span_hidden
        self.retrieval_temperature = retrieval_temperature
        self.train_k = train_k
        self.epochs = epochs
        self.questions_per_step = questions_per_step
        self.learning_rate = learning_rate
        self.warmup_ratio = warmup_ratio
        self.max_steps = max_steps
        self.device = device
        if query_encoder not in QUERY_ENCODER:
            raise ConfigError(f"realm: query_encoder must be one of {', '.join(QUERY_ENCODER)}, not {query_encoder!r}")
        self.query_encoder = query_encoder
        self.retriever_beam_size = retriever_beam_size
        self.retriever_loss = retriever_loss

    def trains_query_encoder(self, retriever: Any) -> bool:
        """Whether ``fit`` trains ``retriever``'s query tower too (``auto``: when it offers one)."""
        able = retriever is not None and all(callable(getattr(retriever, m, None)) for m in QUERY_TRAINING)
        if self.query_encoder == "train" and not able:
            name = getattr(retriever, "name", None)
            raise ConfigError(f"realm: query_encoder=train needs a dense retriever with a trainable query tower, "
                              f"not {name or 'no retriever'} (use query_encoder=fixed)")
        return able and self.query_encoder != "fixed"

    # -- the model ----------------------------------------------------------------------------
    def reader(self) -> Any:
        """The SpanReader and its tokenizer: trained ones after fit / load_fit, else the start."""
        if getattr(self, "reader_", None) is None:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging

            from retbench_readers.realm_model import SpanReader

            logging.disable_progress_bar()
            fitted = getattr(self, "model_dir_", None)
            path = str(fitted / "encoder") if fitted else self.model_ref_.path
            self.tokenizer_ = AutoTokenizer.from_pretrained(path)
            encoder = AutoModel.from_pretrained(path)
            with torch.random.fork_rng():  # the untrained span head is the same in every run
                torch.manual_seed(0)
                self.reader_ = SpanReader(encoder, hidden=self.span_hidden,
                                          max_answer_tokens=self.max_answer_tokens,
                                          null_passage=self.null_passage == "empty",
                                          normalisation=self.span_normalisation, layer_norm=self.span_layer_norm)
            if fitted:
                from safetensors.torch import load_file

                self.reader_.load_state_dict(load_file(str(fitted / "head.safetensors")), strict=False)
            self.reader_.to(self.device_)
        return self.reader_

    def encode(self, question: str, passages: Sequence[Passage]) -> Any:
        """Question + passage pairs; with ``null_passage="empty"`` an empty passage comes last,
        whose only candidate span is [CLS] (position 0)."""
        from retbench_readers.realm_model import Encoded

        self.reader()
        null = self.null_passage == "empty"
        texts = [p.contents(": ") for p in passages] + ([""] if null else [])
        positions = getattr(self.reader_.encoder.config, "max_position_embeddings", None)
        limit = min(self.max_length, positions or self.max_length)
        batch = self.tokenizer_([question] * len(texts), texts, truncation="only_second", max_length=limit,
                                padding=True, return_offsets_mapping=True, return_tensors="pt")
        import torch

        passage_mask = torch.tensor([[1 if s == 1 else 0 for s in batch.sequence_ids(i)] for i in range(len(texts))])
        if null:
            passage_mask[-1] = 0
            passage_mask[-1, 0] = 1
        offsets = [[tuple(o) for o in row] for row in batch["offset_mapping"].tolist()]
        return Encoded(
            input_ids=batch["input_ids"].to(self.device_),
            attention_mask=batch["attention_mask"].to(self.device_),
            token_type_ids=batch["token_type_ids"].to(self.device_) if "token_type_ids" in batch else None,
            passage_mask=passage_mask.to(self.device_),
            offsets=offsets,
            texts=texts,
        )

    def _prior_scores(self, scores: Sequence[float]) -> Any:
        import torch

        return torch.tensor(list(scores), dtype=torch.float32, device=self.device_) / self.retrieval_temperature

    # -- answering ----------------------------------------------------------------------------
    def answer(self, queries: Queries, injections: Mapping[str, Injection]) -> list[Answer]:
        import torch

        model = self.reader()
        model.eval()
        answers = []
        with torch.inference_mode():
            for qid, question in queries.items():
                passages = injections[qid].passages[: self.k] if qid in injections else []
                answers.append(self._answer_one(qid, question, passages))
        return answers

    def _answer_one(self, qid: str, question: str, passages: Sequence[Passage]) -> Answer:
        import torch

        if not passages:
            return Answer(qid=qid, text="", extra={"reason": "no passage"})
        batch = self.encode(question, passages)
        log_span = self.reader_.span_log_probs(batch, self._prior_scores(
            [p.extra.get("retrieval_score", 0.0) for p in passages]))  # log p(z, s | x)
        candidates: dict[str, list[float]] = {}
        shown: dict[str, tuple[str, str]] = {}
        width = log_span.shape[2]
        for z in range(len(passages)):  # the null passage (last, if any) answers nothing
            top = torch.topk(log_span[z].flatten(), k=min(self.top_spans, log_span[z].numel()))
            for value, flat in zip(top.values.tolist(), top.indices.tolist()):
                if value == float("-inf"):
                    continue
                start, offset = divmod(flat, width)
                text = batch.texts[z][batch.offsets[z][start][0] : batch.offsets[z][start + offset][1]]
                key = normalize_answer(text)
                candidates.setdefault(key, []).append(value)
                shown.setdefault(key, (text, passages[z].id))
        if not candidates:
            return Answer(qid=qid, text="", extra={"reason": "no span"})
        scored = {key: float(torch.logsumexp(torch.tensor(v), dim=0)) for key, v in candidates.items()}
        best = max(scored, key=scored.get)
        return Answer(qid=qid, text=shown[best][0], extra={"log_prob": round(scored[best], 4),
                                                          "passage": shown[best][1]})

    # -- training -----------------------------------------------------------------------------
    def gold_spans(self, batch: Any, answers: Sequence[str]) -> Any:
        """Spans (passage, start token, width) whose text is a gold answer: every case-
        insensitive occurrence of an answer that starts and ends on token boundaries."""
        import torch

        gold = torch.zeros((len(batch.texts), batch.input_ids.shape[1], self.max_answer_tokens), dtype=torch.bool)
        mask = batch.passage_mask.tolist()
        for z, text in enumerate(batch.texts):
            starts = {o[0]: i for i, o in enumerate(batch.offsets[z]) if mask[z][i]}
            ends = {o[1]: i for i, o in enumerate(batch.offsets[z]) if mask[z][i]}
            for answer in answers:
                if not answer.strip():
                    continue
                for found in re.finditer(re.escape(answer.strip()), text, flags=re.IGNORECASE):
                    i, j = starts.get(found.start()), ends.get(found.end())
                    if i is not None and j is not None and 0 <= j - i < self.max_answer_tokens:
                        gold[z, i, j - i] = True
        return gold.to(self.device_)

    def fit(self, train: DatasetSplit, *, retriever: Any, workdir: Path) -> dict[str, Any]:
        import torch
        from transformers import get_linear_schedule_with_warmup

        if retriever is None:
            raise ConfigError("realm: training needs a retriever (--retriever) to find passages")
        co_train = self.trains_query_encoder(retriever)
        self.model_dir_ = None
        self.reader_ = None
        model = self.reader()
        qids = [q for q in train.queries if train.answers.get(q)]
        counts: dict[str, int] = {"steps_without_signal": 0}
        if co_train:
            tower = retriever.trainable_query_encoder().to(self.device_)
            tower.train()
            items: list[Any] = qids
            parameters = [*model.parameters(), *tower.parameters()]
            signals: dict[str, set[str]] = {"retriever": set(), "reader": set()}

            def group_loss(group: list[Any]) -> Any:
                return self._co_trained_loss(train, group, retriever, tower, signals)
        else:
            items, counts["skipped_no_answer_span"] = self._examples(train, retriever, qids)
            parameters = list(model.parameters())

            def group_loss(group: list[Any]) -> Any:
                return torch.stack([-model.marginal_log_likelihood(b, self._prior_scores(s), g)
                                    for b, s, g in group]).mean()
        steps_per_epoch = math.ceil(len(items) / self.questions_per_step)
        total = self.epochs * steps_per_epoch if self.max_steps is None else min(self.max_steps,
                                                                                 self.epochs * steps_per_epoch)
        optimizer = torch.optim.AdamW(parameters, lr=self.learning_rate, weight_decay=0.01)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.warmup_ratio * total), total)
        losses: list[float] = []
        started = time.perf_counter()
        model.train()
        order = list(range(len(items)))
        schedule = []
        for epoch in range(self.epochs):
            random.Random(epoch).shuffle(order)
            schedule += [order[s : s + self.questions_per_step] for s in range(0, len(order), self.questions_per_step)]
        for group in track(schedule[:total], description="training (realm)"):
            loss = group_loss([items[i] for i in group])
            if loss is not None:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(round(loss.item(), 5))
            else:
                counts["steps_without_signal"] += 1
            scheduler.step()
        self._save(workdir)
        used = len(items)
        if co_train:  # questions that gave a loss: a passage with the answer in the beam / a gold span read
            tower.save(workdir / "model" / "query_encoder")
            counts.update(retriever_signal_questions=len(signals["retriever"]),
                          reader_signal_questions=len(signals["reader"]))
            used = len(signals["retriever"] | signals["reader"])
        tenth = max(1, len(losses) // 10)
        return {"train_questions": len(qids), **counts, "query_encoder_trained": co_train, "used_questions": used,
                "steps": len(losses), "loss_curve": losses,
                "loss_first_tenth": round(sum(losses[:tenth]) / tenth, 4),
                "loss_last_tenth": round(sum(losses[-tenth:]) / tenth, 4),
                "train_seconds": round(time.perf_counter() - started, 2)}

    def _examples(self, train: DatasetSplit, retriever: Any, qids: list[str]) -> tuple[list[Any], int]:
        """Reader-only training: each question's top ``train_k`` passages, encoded once, and its
        gold spans; questions without one are skipped and counted."""
        run = retriever.search({q: train.queries[q] for q in qids}, k=self.train_k)
        examples, skipped = [], 0
        for qid in track(qids, description="realm: finding answer spans"):
            ranked = sorted(run.get(qid, {}).items(), key=lambda x: -x[1])[: self.train_k]
            if not ranked:
                skipped += 1
                continue
            batch = self.encode(train.queries[qid], train.corpus.get([d for d, _ in ranked]))
            gold = self.gold_spans(batch, train.answers[qid])
            if not gold.any():
                skipped += 1
                continue
            examples.append((batch, [s for _, s in ranked], gold))
        if not examples:
            raise ConfigError(f"realm: no training question of {train.name} ({train.split}) has its answer "
                              "in a retrieved passage")
        return examples, skipped

    def _co_trained_loss(self, train: DatasetSplit, group: list[str], retriever: Any, tower: Any,
                         signals: dict[str, set[str]]) -> Any:
        """ORQA's loss for a group of questions, searched with the current query tower: the
        early-update retrieval loss over the beam plus the reader's joint marginal likelihood
        over the top ``train_k``; a question with neither signal adds nothing (None: no question did)."""
        import torch

        vectors = tower([train.queries[q] for q in group])
        found = retriever.neighbours(vectors.detach().cpu().numpy(), k=self.retriever_beam_size)
        terms = []
        for qid, vector, (ids, fixed) in zip(group, vectors, found, strict=True):
            logits = torch.from_numpy(fixed).to(vector.device) @ vector / self.retrieval_temperature
            answers = train.answers[qid]
            loss, signal = vector.new_zeros(()), False
            if self.retriever_loss:
                correct = torch.tensor(self._has_answer(train, ids, answers), dtype=torch.bool, device=vector.device)
                if correct.any():
                    loss = loss + torch.logsumexp(logits, dim=0) - torch.logsumexp(logits[correct], dim=0)
                    signals["retriever"].add(qid)
                    signal = True
            top = ids[: self.train_k]
            batch = self.encode(train.queries[qid], train.corpus.get(top))
            gold = self.gold_spans(batch, answers)
            if gold.any():
                loss = loss - self.reader_.marginal_log_likelihood(batch, logits[: len(top)], gold)
                signals["reader"].add(qid)
                signal = True
            if signal:
                terms.append(loss)
        return torch.stack(terms).mean() if terms else None

    def _has_answer(self, train: DatasetSplit, ids: list[str], answers: Sequence[str]) -> list[bool]:
        """DPR's answer-string match (as ORQA's has_answer marks retrieved blocks) of each passage,
        its tokens computed once per passage."""
        from retbench import dpr_tokens, tokens_have_answer

        tokens = self.__dict__.setdefault("passage_tokens_", {})
        missing = [i for i in dict.fromkeys(ids) if i not in tokens]
        for passage in train.corpus.get(missing) if missing else []:
            tokens[passage.id] = tuple(dpr_tokens(passage.text))
        return [tokens_have_answer(tokens[i], answers) for i in ids]

    @property
    def fitted_query_encoder_(self) -> Path | None:
        """The query tower ``fit`` trained with the reader, if it trained one."""
        folder = getattr(self, "model_dir_", None)
        return folder / "query_encoder" if folder is not None and (folder / "query_encoder").is_dir() else None

    def _save(self, workdir: Path) -> None:
        from safetensors.torch import save_file

        folder = workdir / "model"
        self.reader_.encoder.save_pretrained(folder / "encoder", safe_serialization=True)
        self.tokenizer_.save_pretrained(folder / "encoder")
        head = {k: v.detach().cpu().contiguous() for k, v in self.reader_.state_dict().items()
                if not k.startswith("encoder.")}
        save_file(head, str(folder / "head.safetensors"))
        (folder / "settings.json").write_text(json.dumps(self.get_params(), indent=1))
        self.load_fit(workdir=workdir)

    def load_fit(self, *, workdir: Path) -> None:
        self.model_dir_ = workdir / "model"
        self.reader_ = None
