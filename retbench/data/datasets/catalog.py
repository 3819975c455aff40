"""The 18 BEIR datasets (Thakur et al., NeurIPS 2021 Datasets and Benchmarks): where each comes
from, how big it is and how it is scored.

Counts are the test split's (MS MARCO: dev) as published in the BEIR paper and ir_datasets;
download checksums are the md5 sums BEIR publishes beside its zips. Four datasets (BioASQ,
Signal-1M, TREC-NEWS, Robust04) have no public download: point ``--data-dir`` at a BEIR-layout
copy you built. ArguAna and Quora drop retrieved documents whose id equals the query id (self
hits, as BEIR's evaluation does); CQADupStack is scored as the mean over its 12 forums.
"""

from __future__ import annotations

from dataclasses import dataclass

from retbench.data.download import Source

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{}.zip"
CQADUPSTACK_FORUMS = ("android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats",
                      "tex", "unix", "webmasters", "wordpress")


@dataclass(frozen=True)
class BeirEntry:
    name: str
    splits: tuple[str, ...]
    documents: int
    queries: int
    licence: str
    md5: str | None = None
    self_hits: bool = False

    @property
    def source(self) -> Source | None:
        return Source(BEIR_URL.format(self.name), md5=self.md5) if self.md5 else None

    @property
    def eval_split(self) -> str:
        return "dev" if self.name == "msmarco" else "test"


SEE_SOURCE = "see the original dataset's terms"

BEIR = {e.name: e for e in (
    BeirEntry("msmarco", ("train", "dev", "test"), 8_841_823, 6_980, "MS MARCO terms (non-commercial research)",
              "444067daf65d982533ea17ebd59501e4"),
    BeirEntry("trec-covid", ("test",), 171_332, 50, "CORD-19 dataset licence", "ce62140cb23feb9becf6270d0d1fe6d1"),
    BeirEntry("nfcorpus", ("train", "dev", "test"), 3_633, 323, SEE_SOURCE, "a89dba18a62ef92f7d323ec890a0d38d"),
    BeirEntry("bioasq", ("train", "test"), 14_914_603, 500, "BioASQ terms (registration; no public download)"),
    BeirEntry("nq", ("train", "test"), 2_681_468, 3_452, "CC BY-SA 3.0", "d4d3d2e48787a744b6f6e691ff534307"),
    BeirEntry("hotpotqa", ("train", "dev", "test"), 5_233_329, 7_405, "CC BY-SA 4.0",
              "f412724f78b0d91183a0e86805e16114"),
    BeirEntry("fiqa", ("train", "dev", "test"), 57_638, 648, SEE_SOURCE, "17918ed23cd04fb15047f73e6c3bd9d9"),
    BeirEntry("signal1m", ("test",), 2_866_316, 97, "Signal Media terms (no public download)"),
    BeirEntry("trec-news", ("test",), 594_977, 57, "TREC Washington Post terms (no public download)"),
    BeirEntry("robust04", ("test",), 528_155, 249, "TREC disks 4&5 terms (no public download)"),
    BeirEntry("arguana", ("test",), 8_674, 1_406, SEE_SOURCE, "8ad3e3c2a5867cdced806d6503f29b99", self_hits=True),
    BeirEntry("webis-touche2020", ("test",), 382_545, 49, SEE_SOURCE, "46f650ba5a527fc69e0a6521c5a23563"),
    BeirEntry("cqadupstack", ("test",), 457_199, 13_145, "Apache-2.0", "4e41456d7df8ee7760a7f866133bda78"),
    BeirEntry("quora", ("dev", "test"), 522_931, 10_000, "Quora terms", "18fb154900ba42a600f84b839c173167",
              self_hits=True),
    BeirEntry("dbpedia-entity", ("dev", "test"), 4_635_922, 400, "CC BY-SA 3.0", "c2a39eb420a3164af735795df012ac2c"),
    BeirEntry("scidocs", ("test",), 25_657, 1_000, "GPL-3.0", "38121350fc3a4d2f48850f6aff52e4a9"),
    BeirEntry("fever", ("train", "dev", "test"), 5_416_568, 6_666, "CC BY-SA 3.0",
              "5a818580227bfb4b35bb6fa46d9b6c03"),
    BeirEntry("climate-fever", ("test",), 5_416_593, 1_535, SEE_SOURCE, "8b66f0a9126c521bae2bde127b4dc99d"),
    BeirEntry("scifact", ("train", "test"), 5_183, 300, "CC BY-NC 2.0 (as listed by BEIR)",
              "5f7d1de60b170fc8027bb7898e2efca1"),
)}
