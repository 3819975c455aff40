"""Open-domain QA in DPR's formats: NQ and TriviaQA (and CuratedTREC-style regex answers).

* questions: ``<name>-<split>.qa.csv``: ``question<TAB>['answer', ...]`` read with a csv reader
  (tab delimiter) and answers parsed as Python literals;
* passages: DPR's Wikipedia ``psgs_w100.tsv`` (``id, text, title``; 21M rows) streamed into the
  Arrow corpus, or, for NQ when it is absent, the gold passages of ``nq-open-oracle.jsonl.gz``
  (then only the questions that have a gold passage are evaluated, with it as the qrel).

Retrieval is scored by DPR top-k accuracy (answer-string matching); qrels exist only with the
gold-passage corpus.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retbench.component import Component
from retbench.data.prepare import prepare_corpus
from retbench.data.download import DownloadError, Source, fetch
from retbench.errors import ConfigError, DataFormatError
from retbench.data.lines import iter_lines, iter_tsv
from retbench.data.types import Corpus, DatasetSplit, EvalRules

WIKIPEDIA = "psgs_w100.tsv"
QA_METRICS = ["top-k-accuracy"]
# DPR's published files (no checksums are published: the first download is pinned).
DPR_RETRIEVER_URL = "https://dl.fbaipublicfiles.com/dpr/data/retriever/"
DPR_WIKIPEDIA_URL = "https://dl.fbaipublicfiles.com/dpr/wikipedia_split/psgs_w100.tsv.gz"


def load_qa_csv(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Questions and gold answers of a DPR ``.qa.csv``; the question id is its 0-based row."""
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for line, fields in iter_tsv(path):
        if len(fields) < 2:
            raise DataFormatError("expected question<TAB>answers", path=path, line=line)
        try:
            gold = ast.literal_eval(fields[1])
        except (ValueError, SyntaxError):
            raise DataFormatError(f"answers are not a Python list literal: {fields[1][:60]!r}",
                                  path=path, line=line, field="answers") from None
        if not isinstance(gold, list) or not all(isinstance(a, str) for a in gold):
            raise DataFormatError("answers must be a list of strings", path=path, line=line, field="answers")
        qid = str(len(queries))
        queries[qid] = fields[0]
        answers[qid] = gold
    if not queries:
        raise DataFormatError("no questions found", path=path)
    return queries, answers


def read_wikipedia_rows(path: Path, digest: Any) -> Iterator[tuple[int, str, str, str, dict]]:
    """Rows of ``psgs_w100.tsv`` (header ``id text title``), streamed."""
    for line, fields in iter_tsv(path, digest=digest):
        if line == 1 and fields[:1] == ["id"]:
            continue
        if len(fields) != 3:
            raise DataFormatError(f"expected 3 fields (id, text, title), got {len(fields)}", path=path, line=line)
        doc_id, text, title = fields
        if not doc_id:
            raise DataFormatError("empty passage id", path=path, line=line, field="id")
        yield line, doc_id, title, text, {}


def load_wikipedia(path: Path, *, workdir: Path) -> Corpus:
    return prepare_corpus(path, lambda digest: read_wikipedia_rows(path, digest), workdir=workdir,
                          reader="dpr-psgs-1", id_field="id")


def _gold_rows(path: Path, digest: Any) -> Iterator[tuple[int, str, str, str, dict]]:
    """Unique gold passages of ``nq-open-oracle.jsonl.gz``; ids are content hashes."""
    seen: set[str] = set()
    for line, text in iter_lines(path, digest=digest):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"invalid JSON ({exc.msg})", path=path, line=line) from None
        for ctx in record.get("ctxs", []):
            doc_id = gold_passage_id(ctx["title"], ctx["text"])
            if doc_id not in seen:
                seen.add(doc_id)
                yield line, doc_id, ctx["title"], ctx["text"], {}


def _open_json(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_retriever_json(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream ``(index, record)`` from DPR's retriever training JSON (one large array)."""
    import ijson

    with _open_json(path) as handle:
        try:
            yield from enumerate(ijson.items(handle, "item"))
        except ijson.JSONError as exc:
            raise DataFormatError(f"invalid JSON ({exc})", path=path) from None


def context_id(ctx: dict[str, Any]) -> str:
    """DPR's passage id when the file has one, else a content hash of title and text."""
    passage_id = str(ctx.get("passage_id") or ctx.get("psg_id") or "")
    return passage_id or gold_passage_id(ctx.get("title", ""), ctx.get("text", ""))


def _context_rows(path: Path, digest: Any) -> Iterator[tuple[int, str, str, str, dict]]:
    digest.update(f"{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    seen: set[str] = set()
    for index, record in iter_retriever_json(path):
        for key in ("positive_ctxs", "negative_ctxs", "hard_negative_ctxs"):
            for ctx in record.get(key) or []:
                doc_id = context_id(ctx)
                if doc_id not in seen:
                    seen.add(doc_id)
                    yield index, doc_id, ctx.get("title", ""), ctx.get("text", ""), {}


def load_retriever_json(path: Path, *, name: str, split: str, workdir: Path) -> DatasetSplit:
    """A DPR retriever file as a training split: every context becomes a corpus passage,
    positives are the qrels and hard negatives are kept as ``hard_negatives``."""
    corpus = prepare_corpus(path, lambda digest: _context_rows(path, digest), workdir=workdir,
                            reader="dpr-retriever-json-1", id_field="passage_id")
    queries, answers, qrels, hard = {}, {}, {}, {}
    for index, record in iter_retriever_json(path):
        if "question" not in record:
            raise DataFormatError(f"record {index} has no question", path=path, field="question")
        qid = str(index)
        queries[qid] = record["question"]
        answers[qid] = list(record.get("answers") or [])
        qrels[qid] = {context_id(c): 1 for c in record.get("positive_ctxs") or []}
        hard[qid] = [context_id(c) for c in record.get("hard_negative_ctxs") or []]
    revision = hashlib.sha256((corpus.fingerprint + str(len(queries))).encode()).hexdigest()[:16]
    return DatasetSplit(name=name, split=split, corpus=corpus, queries=queries, answers=answers,
                        qrels={q: d for q, d in qrels.items() if d}, hard_negatives=hard, revision=revision,
                        rules=EvalRules(metrics=list(QA_METRICS)))


def gold_passage_id(title: str, text: str) -> str:
    return "gold-" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]


class DprQaDataset(Component):
    """Questions from ``<data_dir>/<folder>/<prefix>-<split>.qa.csv`` (downloaded from DPR into
    the cache when no folder is given); passages from ``psgs_w100.tsv[.gz]`` in the folder or
    data_dir, ``corpus=PATH``, or ``corpus=download`` (DPR's 21M-passage Wikipedia, 13 GB)."""

    name = ""
    version = "1"
    folder = ""
    prefix = ""
    answer_match = "string"
    citation = ""

    def __init__(self, location: str | None = None, data_dir: str | None = None, corpus: str | None = None) -> None:
        self.location = location
        self.data_dir = data_dir
        self.corpus = corpus

    @property
    def local(self) -> bool:
        return bool(self.location or self.data_dir)

    def _folder(self, workdir: Path) -> Path:
        """The user's folder, or the cache folder that DPR's files are downloaded into."""
        if not self.local:
            return workdir / "sources" / self.folder
        folder = Path(self.location or self.data_dir or ".")
        return folder / self.folder if (folder / self.folder).is_dir() else folder

    def _file(self, folder: Path, name: str) -> Path | None:
        """``folder/name``, downloaded from DPR when no local folder was given."""
        if (folder / name).is_file():
            return folder / name
        if self.local:
            return None
        try:
            return fetch(Source(DPR_RETRIEVER_URL + name), folder)
        except DownloadError as exc:
            raise ConfigError(f"dataset '{self.name}': {exc} (or pass --data-dir with DPR's files)") from None

    def _wikipedia(self, folder: Path, workdir: Path) -> Path | None:
        if self.corpus == "download":
            return fetch(Source(DPR_WIKIPEDIA_URL), workdir / "sources" / "wikipedia")
        if self.corpus:
            return Path(self.corpus)
        candidates = [base / name for base in (folder, folder.parent) for name in (WIKIPEDIA, WIKIPEDIA + ".gz")]
        return next((p for p in candidates if p.is_file()), None)

    def _retriever_json(self, folder: Path, split: str) -> Path | None:
        names = [f"{stem}{suffix}" for stem in (f"{self.prefix}-{split}", f"biencoder-{self.prefix}-{split}")
                 for suffix in (".json", ".json.gz")]
        return next((folder / n for n in names if (folder / n).is_file()), None)

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        folder = self._folder(workdir)
        questions = folder / f"{self.prefix}-{split}.qa.csv"
        if not questions.is_file() and not self._retriever_json(folder, split):
            questions = self._file(folder, questions.name) or questions
        if not questions.is_file():
            training = self._retriever_json(folder, split)
            if training is not None:
                return load_retriever_json(training, name=self.name, split=split, workdir=workdir)
            raise ConfigError(f"{questions} not found (DPR question file for split '{split}'; for training "
                              f"splits, DPR's {self.prefix}-{split}.json)")
        queries, answers = load_qa_csv(questions)
        rules = EvalRules(metrics=list(QA_METRICS), answer_match=self.answer_match,
                          notes="retrieval scored by DPR top-k answer-string accuracy")
        wikipedia = self._wikipedia(folder, workdir)
        corpus = load_wikipedia(wikipedia, workdir=workdir) if wikipedia else Corpus.from_passages([])
        split_data = DatasetSplit(name=self.name, split=split, corpus=corpus, queries=queries, answers=answers,
                                  rules=rules, citation=self.citation)
        if wikipedia is None:
            self._gold_corpus(folder, split_data, workdir=workdir)
        split_data.revision = hashlib.sha256(
            (split_data.corpus.fingerprint + json.dumps(split_data.queries, sort_keys=True)).encode()).hexdigest()[:16]
        return split_data

    def _gold_corpus(self, folder: Path, split_data: DatasetSplit, *, workdir: Path) -> None:
        """Without Wikipedia, the split keeps an empty corpus (closed-book runs only)."""


class NaturalQuestions(DprQaDataset):
    """Natural Questions open (DPR): 3,610 test questions; Wikipedia or the gold passages."""

    name = "nq"
    folder = "nq"
    prefix = "nq"
    citation = "Kwiatkowski et al., TACL 2019; Karpukhin et al., EMNLP 2020 (DPR)"
    licence = "CC BY-SA 3.0"
    oracle = "nq-open-oracle.jsonl.gz"

    def _gold_corpus(self, folder: Path, split_data: DatasetSplit, *, workdir: Path) -> None:
        """The gold passages of nq-open-oracle (Liu et al., 2023) as corpus, restricted to the
        questions they answer; matched by question text against nq-open-<split>.qa.csv."""
        oracle = folder / self.oracle
        open_questions = folder / f"nq-open-{split_data.split}.qa.csv"
        if not oracle.is_file() or not open_questions.is_file():
            return
        position = {text: qid for qid, text in load_qa_csv(open_questions)[0].items()}
        qrels: dict[str, dict[str, int]] = {}
        with gzip.open(oracle, "rt", encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                record = json.loads(text)
                qid = position.get(record["question"])
                if qid is None:
                    raise DataFormatError("question not in " + open_questions.name, path=oracle, line=line,
                                          field="question")
                qrels[qid] = {gold_passage_id(c["title"], c["text"]): 1 for c in record["ctxs"] if c.get("isgold")}
        split_data.corpus = prepare_corpus(oracle, lambda digest: _gold_rows(oracle, digest), workdir=workdir,
                                           reader="nq-oracle-1", id_field="ctxs")
        split_data.queries = {q: split_data.queries[q] for q in qrels}
        split_data.answers = {q: split_data.answers[q] for q in qrels}
        split_data.qrels = qrels
        split_data.rules.metrics = [*QA_METRICS, "nDCG@10", "R@100"]
        split_data.rules.notes += (f"; corpus: the {len(qrels)} questions' gold passages from {self.oracle}, "
                                   "only those questions evaluated")


class TriviaQA(DprQaDataset):
    """TriviaQA open (DPR): 11,313 test questions; needs psgs_w100.tsv for retrieval."""

    name = "triviaqa"
    folder = "triviaqa"
    prefix = "trivia"
    citation = "Joshi et al., ACL 2017; Karpukhin et al., EMNLP 2020 (DPR)"
    licence = "Apache-2.0"


class CuratedTrec(DprQaDataset):
    """CuratedTREC (DPR): answers are regular expressions, matched with DPR's regex rule."""

    name = "curatedtrec"
    folder = "curatedtrec"
    prefix = "curatedtrec"
    answer_match = "regex"
    citation = "Baudiš and Šedivý, 2015; Karpukhin et al., EMNLP 2020 (DPR)"
    licence = "see the original dataset's terms"
