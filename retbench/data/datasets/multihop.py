"""2WikiMultihopQA and HotpotQA in their published JSON (a list of questions, each with
``question``, ``answer``, ``type``, ``context`` = [[title, [sentences]]], ``supporting_facts``).

The retrieval corpus is built from the context paragraphs (each paragraph one passage, the
sentences joined; identical paragraphs shared by several questions kept once) and the
paragraphs named by a question's supporting facts are its qrels. ``corpus=PATH`` uses an
external corpus instead (BEIR ``corpus.jsonl`` or DPR ``psgs_w100.tsv``; then no qrels).
Answers are scored with EM / F1 overall and per question type, as in the PRAG and DyPRAG papers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retbench.component import Component
from retbench.data.prepare import prepare_corpus
from retbench.data.datasets.beir import load_corpus
from retbench.data.datasets.dpr import load_wikipedia
from retbench.data.download import DownloadError, Source, fetch
from retbench.errors import ConfigError, DataFormatError
from retbench.data.lines import file_sha256
from retbench.data.types import Corpus, DatasetSplit, EvalRules

RETRIEVAL_METRICS = ["R@2", "R@5", "R@10", "nDCG@10"]


def paragraph_text(sentences: list[str]) -> str:
    return " ".join(s.strip() for s in sentences if s.strip())


def paragraph_id(title: str, text: str) -> str:
    return f"{title}#" + hashlib.sha1(text.encode()).hexdigest()[:8]


def read_questions(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not valid UTF-8 (byte {exc.start})", path=path) from None
    if not isinstance(data, list):
        raise DataFormatError("expected a JSON list of questions", path=path)
    for index, record in enumerate(data):
        for key in ("_id", "question", "answer", "context"):
            if key not in record:
                raise DataFormatError(f"question {index} lacks '{key}'", path=path, field=key)
    return data


def _paragraph_rows(questions: list[dict[str, Any]], path: Path, digest: Any) -> Iterator[tuple]:
    digest.update(file_sha256(path).encode())
    seen: set[str] = set()
    for index, record in enumerate(questions):
        for title, sentences in record["context"]:
            text = paragraph_text(sentences)
            doc_id = paragraph_id(title, text)
            if doc_id not in seen:
                seen.add(doc_id)
                yield index, doc_id, title, text, {}


class MultiHopDataset(Component):
    """Reads ``<data_dir>/<folder>/<file>``; ``location`` may name the JSON file itself."""

    name = ""
    version = "1"
    folder = ""
    files: dict[str, tuple[str, ...]] = {}
    citation = ""
    download_url = ""  # where the first file of each split is published, if anywhere
    default_split = "dev"

    def __init__(self, location: str | None = None, data_dir: str | None = None, corpus: str | None = None) -> None:
        self.location = location
        self.data_dir = data_dir
        self.corpus = corpus

    def _file(self, split: str, workdir: Path) -> Path:
        if self.location and Path(self.location).is_file():
            return Path(self.location)
        base = self.location or self.data_dir
        if not base and self.download_url and split in self.files:
            name = self.files[split][0]
            try:
                return fetch(Source(self.download_url + name), workdir / "sources" / self.folder)
            except DownloadError as exc:
                raise ConfigError(f"dataset '{self.name}': {exc} (or pass --data-dir)") from None
        if not base:
            raise ConfigError(f"dataset '{self.name}' is not on disk: pass --data-dir DIR with DIR/{self.folder}/"
                              f"{' or '.join(self.files.get(split, ('?',)))}")
        folder = Path(base) / self.folder if (Path(base) / self.folder).is_dir() else Path(base)
        for name in self.files.get(split, ()):
            if (folder / name).is_file():
                return folder / name
        raise ConfigError(f"{folder}: no file for split '{split}' (looked for {', '.join(self.files.get(split, ()))})")

    def load(self, split: str, *, workdir: Path) -> DatasetSplit:
        path = self._file(split, workdir)
        questions = read_questions(path)
        rules = EvalRules(metrics=list(RETRIEVAL_METRICS), yes_no_strict=True,
                          notes="answers: EM/F1 with SQuAD normalisation, overall and per question type; F1 is 0 "
                                "when a yes/no/noanswer prediction or gold answer differs from the other")
        qrels: dict[str, dict[str, int]] = {}
        if self.corpus:
            corpus = self._external_corpus(Path(self.corpus), workdir)
            rules.metrics = []
        else:
            corpus = prepare_corpus(path, lambda digest: _paragraph_rows(questions, path, digest), workdir=workdir,
                                    reader="multihop-paragraphs-1", id_field="context")
            for record in questions:
                supporting = {title for title, _ in record.get("supporting_facts", [])}
                qrels[record["_id"]] = {paragraph_id(title, paragraph_text(sentences)): 1
                                        for title, sentences in record["context"] if title in supporting}
        return DatasetSplit(
            name=self.name, split=split, corpus=corpus,
            queries={r["_id"]: r["question"] for r in questions},
            qrels={q: d for q, d in qrels.items() if d},
            answers={r["_id"]: [str(r["answer"])] for r in questions},
            query_types={r["_id"]: r["type"] for r in questions if "type" in r},
            revision=hashlib.sha256((corpus.fingerprint + file_sha256(path)).encode()).hexdigest()[:16],
            citation=self.citation, rules=rules,
        )

    @staticmethod
    def _external_corpus(path: Path, workdir: Path) -> Corpus:
        if not path.is_file():
            raise ConfigError(f"corpus file not found: {path}")
        return load_wikipedia(path, workdir=workdir) if path.suffix == ".tsv" else load_corpus(path, workdir=workdir)


class TwoWikiMultihopQA(MultiHopDataset):
    """2WikiMultihopQA: comparison, bridge_comparison, compositional and inference questions."""

    name = "2wikimultihopqa"
    folder = "2wikimultihopqa"
    files = {"dev": ("dev.json", "dev_subset500.json"), "train": ("train.json",), "test": ("test.json",)}
    citation = "Ho et al., COLING 2020"
    licence = "Apache-2.0"


class HotpotQA(MultiHopDataset):
    """HotpotQA (distractor or fullwiki JSON): bridge and comparison questions."""

    name = "hotpotqa"
    folder = "hotpotqa"
    files = {"dev": ("hotpot_dev_distractor_v1.json", "hotpot_dev_fullwiki_v1.json",
                     "hotpot_dev_fullwiki_v1.subset500.json"), "train": ("hotpot_train_v1.1.json",)}
    citation = "Yang et al., EMNLP 2018"
    download_url = "http://curtis.ml.cmu.edu/datasets/hotpot/"
    licence = "CC BY-SA 4.0"
