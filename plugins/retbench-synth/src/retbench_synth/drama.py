"""DRAMA's LLM-augmented training data (Ma et al., 2025): augmenters ``crop``, ``qgen``,
``rerank`` and ``triplet``.

Each takes ``passages`` passages of the corpus (drawn with ``seed``) and returns training
items ``{"qid", "query", "positives", "distractors", "source"}``:
- ``crop``: a random sentence of the passage (at least ``min_words`` words) is the query; the
  top ``positives`` of the ``labeler`` retriever for it are positives, ranks ``distractors_from``
  to ``k`` distractors (no generator needed);
- ``qgen``: the generator, shown three examples (few-shot, as DRAMA prompts it), brainstorms a
  retrieval task for the passage and writes a search query for it; positives and distractors
  as for ``crop``. The queries are sampled as DRAMA samples them (``temperature=0.8``,
  ``top_p=0.9``, passed to the generator for these calls only; ``temperature=None`` leaves
  the generator's own setting);
- ``rerank``: the generator reranks the labeller's top ``k`` of each ``qgen`` query listwise,
  greedily (``rank_temperature=0.0``) whatever the queries were sampled at,
  all of them in one prompt (``window=None``, as DRAMA) or in sliding windows; its top 1 is the
  positive, ranks ``distractors_from`` to ``k`` the distractors (not rank 2, the likeliest
  false negative);
- ``triplet``: the generator writes a query, a positive and a hard negative passage itself
  (JSON, validated); the new passages join the corpus.
The labeller is any registered retriever by name, built from the run's registries:
``labeler=bm25``, or ``labeler=dpr@<fit>`` for a trained bi-encoder (``<fit>``: a fit folder,
its ``model`` folder or the record of the run that trained it, i.e. the retriever's ``init``),
with more parameters in ``labeler_args``; its index is cached per labeller identity and corpus.
Generated outputs are cached one JSON file per passage, in folders keyed by corpus, generator,
prompt and the settings that shape the output (not ``passages`` or ``seed``), so an
interrupted generation resumes where it stopped and ``qgen``, ``rerank`` and any recipe that
combines them share their queries; every item list comes with counts of kept and rejected
outputs (``last_counts_``) and the prompt templates and their version (``last_prompts_``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, Corpus, Passage, atomic_write_json, component_identity, stage_key
from retbench_synth.json_output import parse_json_object
from retbench_synth.listwise import PROMPT as RERANK_PROMPT
from retbench_synth.listwise import rerank_many
from retbench_synth.members import BuildsComponents

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
QGEN_EXAMPLES = (
    ("The Great Barrier Reef, off the coast of Queensland, is the largest coral reef system in the world and is "
     "made of more than 2,900 individual reefs.",
     "Find facts about a natural landmark", "how many individual reefs make up the great barrier reef"),
    ("Metformin lowers blood glucose mainly by reducing glucose production in the liver, and it is the first drug "
     "prescribed for type 2 diabetes.",
     "Given a medical claim, retrieve the evidence for it", "metformin reduces liver glucose output in diabetes"),
    ("In Python, list.sort() sorts the list in place and returns None, while sorted() returns a new sorted list.",
     "Answer a programming question", "difference between sort and sorted in python"),
)
QGEN_PROMPT = (
    "Brainstorm a retrieval task that the passage could serve, then write one search query for that task that "
    "the passage answers. Be creative. Answer with two lines, \"Task: ...\" and \"Query: ...\".\n\n"
    + "".join(f"Passage: {p}\nTask: {t}\nQuery: {q}\n\n" for p, t, q in QGEN_EXAMPLES)
    + "Passage: {passage}\nTask:"
)
TRIPLET_PROMPT = (
    "Write a search query, a short passage that answers it, and a short passage on the same topic that does "
    "not answer it. Base them on the passage below. Reply with JSON only: "
    '{"query": "...", "positive": "...", "negative": "..."}\n\nPassage: {passage}'
)
PROMPT_VERSION = "2"
QUERY_LINE = re.compile(r"^\s*(?:search )?query\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(text) if s.strip()]


def crop_query(passage: Passage, rng: random.Random, min_words: int) -> str | None:
    """A random sentence of the passage's text with at least ``min_words`` words."""
    usable = [s for s in sentences(passage.text) if len(s.split()) >= min_words]
    return rng.choice(usable) if usable else None


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


EXAMPLE_WORDS = [(words(q), words(f"{p} {t} {q}")) for p, t, q in QGEN_EXAMPLES]


def copies_example(query: str) -> bool:
    """Whether a written query repeats a few-shot example: it holds all of an example query's
    words, or (4 words or more) uses only words of one example. Small generators do this."""
    found = words(query)
    return any(q <= found or (len(found) >= 4 and found <= whole) for q, whole in EXAMPLE_WORDS)


def clean_query(text: str) -> str:
    """The query of a ``Task: ... / Query: ...`` answer (empty when it wrote no query line)."""
    found = QUERY_LINE.search(text)
    return found.group(1).strip().strip("\"'") if found else ""


def labeler_spec(spec: str, args: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name@<fit>`` (a trained model: the retriever's ``init``) and its parameters."""
    name, at, fit = spec.partition("@")
    params = dict(args or {})
    if at:
        if not name or not fit:
            raise ConfigError(f"labeler '{spec}': expected a retriever name or name@<fit folder or record>")
        params["init"] = fit
    return name, params


def sampling_arguments(component: str, generator: Any, **settings: float | None) -> dict[str, float]:
    """The per-call sampling keywords (``temperature``, ``top_p``) that are set, checked against
    what ``generator.generate`` accepts."""
    wanted = {k: v for k, v in settings.items() if v is not None}
    parameters = inspect.signature(generator.generate).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return wanted
    missing = [k for k in wanted if k not in parameters]
    if missing:
        raise ConfigError(f"{component}: generator '{getattr(generator, 'name', type(generator).__name__)}' takes no "
                          f"per-call {', '.join(missing)}; set --augment-arg {missing[0]}=null to use the "
                          "generator's own sampling")
    return wanted


def parse_triplet(text: str) -> dict[str, str] | None:
    """The ``{"query", "positive", "negative"}`` object in a generation, or None when invalid."""
    value = parse_json_object(text)
    if value is None:
        return None
    fields = {key: value.get(key) for key in ("query", "positive", "negative")}
    if not all(isinstance(v, str) and v.strip() for v in fields.values()):
        return None
    return {k: v.strip() for k, v in fields.items()}


class DramaAugmenter(BuildsComponents, Component):
    """What the four DRAMA augmenters share: the passages drawn, the labelling retriever, the
    per-passage generation cache."""

    name = "drama"
    version = "2"
    uses_generator = True

    def __init__(self, passages: int = 1000, k: int = 20, positives: int = 1, distractors_from: int = 10,
                 labeler: str = "bm25", labeler_args: dict[str, Any] | None = None, min_words: int = 5,
                 max_new_tokens: int = 256, seed: int = 0) -> None:
        self.passages = passages
        self.k = k
        self.positives = positives
        self.distractors_from = distractors_from
        self.labeler = labeler
        self.labeler_args = labeler_args
        self.min_words = min_words
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    def chosen(self, corpus: Corpus) -> list[Passage]:
        ids = corpus.ids
        picked = sorted(random.Random(self.seed).sample(range(len(ids)), min(self.passages, len(ids))))
        return corpus.get([ids[i] for i in picked])

    def cache_folder(self, workdir: Path, generator: Any, corpus: Corpus, prompt: str, **settings: Any) -> Path:
        """The folder of one kind of generated output: what makes it, not which passages."""
        identity = component_identity(generator) if generator is not None else None
        return workdir / "generations" / stage_key(corpus=corpus.fingerprint, generator=identity, prompt=prompt,
                                                   prompt_version=PROMPT_VERSION, **settings)[:24]

    def generated(self, passages: Sequence[Passage], folder: Path, make: Callable[[list[Passage]], list[Any]],
                  chunk: int = 64) -> dict[str, Any]:
        """{passage id: output}; cached outputs are read, the others made ``chunk`` at a time (one
        generator call, which batches prompts of similar length together) and written one file
        per passage as soon as their chunk is done."""
        folder.mkdir(parents=True, exist_ok=True)

        def path(passage: Passage) -> Path:
            return folder / f"{hashlib.sha256(passage.id.encode()).hexdigest()[:32]}.json"

        outputs = {p.id: json.loads(path(p).read_text())["output"] for p in passages if path(p).is_file()}
        todo = [p for p in passages if p.id not in outputs]
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            for passage, output in zip(part, make(part), strict=True):
                atomic_write_json(path(passage), {"passage_id": passage.id, "output": output})
                outputs[passage.id] = output
        return outputs

    def prompted(self, corpus: Corpus, generator: Any, workdir: Path, prompt: str, **sampling: float | None
                 ) -> tuple[list[Passage], dict[str, Any]]:
        """The passages drawn and the generator's output for ``prompt`` on each (cached), with
        the per-call ``sampling`` settings that are not None."""
        if generator is None:
            raise ConfigError(f"{self.name}: needs a generator (--generator hf)")
        chosen = self.chosen(corpus)
        arguments = sampling_arguments(self.name, generator, **sampling)
        outputs = self.generated(
            chosen, self.cache_folder(workdir, generator, corpus, prompt, max_new_tokens=self.max_new_tokens,
                                      **arguments),
            lambda part: generator.generate([prompt.replace("{passage}", p.contents(": ")) for p in part],
                                            max_new_tokens=self.max_new_tokens, **arguments))
        return chosen, outputs

    def validate(self) -> None:
        labeler_spec(self.labeler, self.labeler_args)

    def labeller(self, corpus: Corpus, workdir: Path) -> Any:
        """The retriever that labels synthetic queries, indexed on ``corpus`` (index cached)."""
        retriever = self.build_component("retrievers", *labeler_spec(self.labeler, self.labeler_args))
        folder = workdir / "index" / stage_key(retriever=component_identity(retriever), corpus=corpus.fingerprint)[:24]
        if (folder / ".complete").is_file() and hasattr(retriever, "load_index"):
            retriever.load_index(workdir=folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            retriever.index(corpus, workdir=folder)
            (folder / ".complete").write_text("")
        return retriever

    def retrieved(self, queries: dict[str, str], corpus: Corpus, workdir: Path) -> dict[str, list[str]]:
        """{passage id: ranked document ids} for the synthetic query of each passage."""
        if not queries:
            return {}
        run = self.labeller(corpus, workdir).search(queries, k=self.k)
        return {q: [d for d, _ in sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))] for q in queries}

    def split_ranking(self, ranked: list[str]) -> tuple[list[str], list[str]]:
        return ranked[: self.positives], ranked[self.distractors_from : self.k]

    def items(self, queries: dict[str, str], corpus: Corpus, workdir: Path) -> list[dict[str, Any]]:
        ranked = self.retrieved(queries, corpus, workdir)
        out = []
        for pid, query in queries.items():
            positives, distractors = self.split_ranking(ranked.get(pid, []))
            if positives:
                out.append({"qid": f"{self.name}-{pid}", "query": query, "positives": positives,
                            "distractors": distractors, "source": self.name})
        return out


class CropAugmenter(DramaAugmenter):
    name = "crop"
    uses_generator = False

    def augment(self, corpus: Corpus, *, generator: Any = None, workdir: Path) -> list[dict[str, Any]]:
        rng = random.Random(self.seed)
        queries = {}
        rejected = 0
        for passage in self.chosen(corpus):
            query = crop_query(passage, rng, self.min_words)
            if query is None:
                rejected += 1
            else:
                queries[passage.id] = query
        items = self.items(queries, corpus, workdir)
        self.last_counts_ = {"kept": len(items), "rejected": rejected + len(queries) - len(items)}
        return items


class QgenAugmenter(DramaAugmenter):
    name = "qgen"

    def __init__(self, passages: int = 1000, k: int = 20, positives: int = 1, distractors_from: int = 10,
                 labeler: str = "bm25", labeler_args: dict[str, Any] | None = None, min_words: int = 5,
                 max_new_tokens: int = 256, temperature: float | None = 0.8, top_p: float | None = 0.9,
                 seed: int = 0) -> None:
        super().__init__(passages=passages, k=k, positives=positives, distractors_from=distractors_from,
                         labeler=labeler, labeler_args=labeler_args, min_words=min_words,
                         max_new_tokens=max_new_tokens, seed=seed)
        self.temperature = temperature
        self.top_p = top_p

    def queries(self, corpus: Corpus, generator: Any, workdir: Path) -> dict[str, str]:
        chosen, outputs = self.prompted(corpus, generator, workdir, QGEN_PROMPT, temperature=self.temperature,
                                        top_p=self.top_p)
        self.last_prompts_ = {"version": PROMPT_VERSION, "templates": {"qgen": QGEN_PROMPT}}
        queries = {p.id: clean_query(outputs[p.id]) for p in chosen}
        kept = {pid: q for pid, q in queries.items() if len(q.split()) >= 2}
        self.query_counts_ = {"no_query_line": sum(not q for q in queries.values()),
                              "too_short": sum(bool(q) and pid not in kept for pid, q in queries.items()),
                              "copies_example": sum(copies_example(q) for q in kept.values())}
        return kept

    def augment(self, corpus: Corpus, *, generator: Any, workdir: Path) -> list[dict[str, Any]]:
        queries = self.queries(corpus, generator, workdir)
        items = self.items(queries, corpus, workdir)
        self.last_counts_ = {"kept": len(items), "rejected": min(self.passages, len(corpus)) - len(items),
                             **self.query_counts_}
        return items


class RerankAugmenter(QgenAugmenter):
    """``qgen`` queries, labelled by the generator's listwise reranking of the top ``k``."""

    name = "rerank"

    def __init__(self, passages: int = 1000, k: int = 20, window: int | None = None, step: int = 4,
                 max_chars: int = 300, distractors_from: int = 10, labeler: str = "bm25",
                 labeler_args: dict[str, Any] | None = None, max_new_tokens: int = 256, rank_new_tokens: int = 256,
                 temperature: float | None = 0.8, top_p: float | None = 0.9, rank_temperature: float | None = 0.0,
                 seed: int = 0) -> None:
        super().__init__(passages=passages, k=k, distractors_from=distractors_from, labeler=labeler,
                         labeler_args=labeler_args, max_new_tokens=max_new_tokens, temperature=temperature,
                         top_p=top_p, seed=seed)
        self.window = window
        self.step = step
        self.max_chars = max_chars
        self.rank_new_tokens = rank_new_tokens
        self.rank_temperature = rank_temperature

    def augment(self, corpus: Corpus, *, generator: Any, workdir: Path) -> list[dict[str, Any]]:
        queries = self.queries(corpus, generator, workdir)
        ranked = self.retrieved(queries, corpus, workdir)
        texts = {p.id: p.contents(": ") for p in corpus.get(sorted({d for r in ranked.values() for d in r}))}
        chosen = [p for p in self.chosen(corpus) if p.id in queries]
        ranking = sampling_arguments(self.name, generator, temperature=self.rank_temperature)

        def make(part: list[Passage]) -> list[Any]:
            lists = [ranked.get(p.id, []) for p in part]
            results = rerank_many([queries[p.id] for p in part], [[texts[d] for d in c] for c in lists],
                                  lambda prompts: generator.generate(prompts, max_new_tokens=self.rank_new_tokens,
                                                                     **ranking),
                                  window=self.window or self.k, step=self.step, max_chars=self.max_chars)
            return [{"ranking": [c[i] for i in order], **counts} for c, (order, counts) in zip(lists, results)]

        folder = self.cache_folder(workdir, generator, corpus, RERANK_PROMPT, query_prompt=QGEN_PROMPT,
                                   query_tokens=self.max_new_tokens, rank_tokens=self.rank_new_tokens, k=self.k,
                                   window=self.window or self.k, step=self.step, max_chars=self.max_chars,
                                   labeler=self.labeler, labeler_args=self.labeler_args,
                                   query_sampling=[self.temperature, self.top_p], **ranking)
        outputs = self.generated(chosen, folder, make)
        self.last_prompts_ = {"version": PROMPT_VERSION, "templates": {"qgen": QGEN_PROMPT, "rerank": RERANK_PROMPT}}
        items = []
        counts = {"kept": 0, "rejected": 0, "clean_windows": 0, "repaired_windows": 0}
        for passage in chosen:
            output = outputs[passage.id]
            counts["clean_windows"] += output["clean"]
            counts["repaired_windows"] += output["repaired"]
            if not output["ranking"]:
                counts["rejected"] += 1
                continue
            items.append({"qid": f"{self.name}-{passage.id}", "query": queries[passage.id],
                          "positives": output["ranking"][:1],
                          "distractors": output["ranking"][self.distractors_from : self.k],
                          "source": self.name})
        counts["kept"] = len(items)
        counts["rejected"] += min(self.passages, len(corpus)) - len(chosen)
        self.last_counts_ = {**counts, **self.query_counts_}
        return items


class TripletAugmenter(DramaAugmenter):
    """The generator writes (query, positive, negative) itself; the passages are new. Kept for
    ablations (DRAMA found it the least useful source)."""

    name = "triplet"

    def augment(self, corpus: Corpus, *, generator: Any, workdir: Path) -> list[dict[str, Any]]:
        chosen, outputs = self.prompted(corpus, generator, workdir, TRIPLET_PROMPT)
        self.last_prompts_ = {"version": PROMPT_VERSION, "templates": {"triplet": TRIPLET_PROMPT}}
        items = []
        for passage in chosen:
            triplet = parse_triplet(outputs[passage.id])
            if triplet is None:
                continue
            base = f"{self.name}-{passage.id}"
            items.append({"qid": base, "query": triplet["query"], "positives": [f"{base}-pos"],
                          "distractors": [f"{base}-neg"], "source": self.name,
                          "new_passages": [{"id": f"{base}-pos", "text": triplet["positive"]},
                                           {"id": f"{base}-neg", "text": triplet["negative"]}]})
        self.last_counts_ = {"kept": len(items), "rejected": len(chosen) - len(items)}
        return items
