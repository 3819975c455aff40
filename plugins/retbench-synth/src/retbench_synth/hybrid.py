"""The ``hybrid`` retriever: the fused run of two or more retrievers, through ranx.

``method=rrf``: reciprocal-rank fusion, sum of 1 / (``rrf_k`` + rank). ``method=interpolation``:
each member's scores normalised per query (``norm``: ranx's ``min-max`` by default, or
``max``, ``sum``, ``zmuv``, ``rank``, ``borda``), then summed with ``weights`` (DPR's
BM25 + DPR hybrid is such a linear combination). Each member retrieves ``depth`` documents
(at least k) and indexes into its own sub-folder; members are built from the run's
registries, with their parameters in ``member_args`` ({member name: {param: value}}).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from retbench import Component, ConfigError, Corpus, Queries, Run, params_of
from retbench_synth.members import BuildsComponents

METHODS = ("rrf", "interpolation")
NORMS = ("min-max", "max", "sum", "zmuv", "rank", "borda")


def member_names(members: list[str] | str) -> list[str]:
    names = [m.strip() for m in members.split(",")] if isinstance(members, str) else list(members)
    names = [n for n in names if n]
    if len(names) < 2:
        raise ConfigError(f"hybrid: members names two or more retrievers (e.g. members=bm25,dpr), got {members!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"hybrid: each member once, got {names}")
    if "hybrid" in names:
        raise ConfigError("hybrid: a member cannot itself be 'hybrid'")
    return names


class HybridRetriever(BuildsComponents, Component):
    name = "hybrid"
    version = "1"

    def __init__(self, members: list[str] | str = "bm25,dpr", member_args: dict[str, dict[str, Any]] | None = None,
                 method: str = "rrf", weights: list[float] | None = None, norm: str = "min-max", rrf_k: int = 60,
                 depth: int = 100) -> None:
        self.members = members
        self.member_args = member_args
        self.method = method
        self.weights = weights
        self.norm = norm
        self.rrf_k = rrf_k
        self.depth = depth

    @functools.cached_property
    def members_(self) -> list[tuple[str, Any]]:
        names = member_names(self.members)
        args = self.member_args or {}
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise ConfigError(f"hybrid: member_args names {unknown}, which are not members ({names})")
        return [(name, self.build_component("retrievers", name, args.get(name))) for name in names]

    def fingerprint(self) -> dict[str, Any]:
        described = []
        for name, member in self.members_:
            fingerprint = getattr(member, "fingerprint", None)
            described.append({"name": name, "version": str(getattr(member, "version", "")),
                              "params": params_of(member), "fingerprint": fingerprint() if callable(fingerprint) else None})
        return {"members": described}

    def _folder(self, workdir: Path, index: int, name: str) -> Path:
        folder = workdir / f"{index}-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def index(self, corpus: Corpus, *, workdir: Path) -> None:
        for index, (name, member) in enumerate(self.members_):
            member.index(corpus, workdir=self._folder(workdir, index, name))

    def load_index(self, *, workdir: Path) -> None:
        for index, (name, member) in enumerate(self.members_):
            if not hasattr(member, "load_index"):
                raise ConfigError(f"hybrid: member '{name}' cannot reload a saved index (no load_index)")
            member.load_index(workdir=self._folder(workdir, index, name))

    def search(self, queries: Queries, *, k: int) -> Run:
        runs = [member.search(queries, k=max(k, self.depth)) for _, member in self.members_]
        return fuse(runs, list(queries), k=k, method=self.method, weights=self.weights, norm=self.norm,
                    rrf_k=self.rrf_k)


def fuse(runs: list[Run], qids: list[str], *, k: int, method: str, weights: list[float] | None, norm: str,
         rrf_k: int) -> Run:
    """The top ``k`` of the fused runs for every query in ``qids`` (a query no member found
    anything for gets an empty ranking)."""
    import ranx

    if method not in METHODS:
        raise ConfigError(f"hybrid: method must be one of {', '.join(METHODS)}, got '{method}'")
    if method == "interpolation" and norm not in NORMS:
        raise ConfigError(f"hybrid: norm must be one of {', '.join(NORMS)}, got '{norm}'")
    weights = list(weights) if weights is not None else [1.0 / len(runs)] * len(runs)
    if len(weights) != len(runs):
        raise ConfigError(f"hybrid: {len(weights)} weights for {len(runs)} members")
    found = [q for q in qids if any(run.get(q) for run in runs)]
    if not found:
        return {q: {} for q in qids}
    # ranx wants every run to hold the same queries, each with at least one document: a member
    # that found nothing for a query contributes a zero-scored placeholder nobody else can get.
    ranx_runs = [ranx.Run({q: dict(run.get(q) or {"\x00none": 0.0}) for q in found}) for run in runs]
    if method == "rrf":
        fused = ranx.fuse(ranx_runs, norm=None, method="rrf", params={"k": rrf_k})
    else:
        fused = ranx.fuse(ranx_runs, norm=norm, method="wsum", params={"weights": weights})
    result: Run = {q: {} for q in qids}
    for qid, scores in fused.to_dict().items():
        ranked = sorted(((d, float(s)) for d, s in scores.items() if d != "\x00none"), key=lambda x: (-x[1], x[0]))
        result[qid] = dict(ranked[:k])
    return result
