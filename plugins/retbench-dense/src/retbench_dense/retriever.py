"""Dense retrievers: one component, three method presets (DPR, ANCE, DRAMA).

Parameters left at ``auto`` are settled by the method and the model: the hub checkpoints when
the hub can be reached, else an offline package (docs/architecture.md section 7); pooling and
normalisation from the model's sentence-transformers configuration when it has one, else the
method's. What ``auto`` settled on, with the weights' revision, is the ``fingerprint`` that
enters every cache key.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from retbench import (
    Component,
    ConfigError,
    Corpus,
    DatasetSplit,
    ModelRef,
    Passage,
    Queries,
    RetbenchError,
    Run,
    atomic_write_json,
    default_model,
    resolve_model,
    run_record_path,
    torch_device,
)
from retbench_dense.embeddings import STORAGE_DTYPES, EmbeddingStore, encode_shards
from retbench_dense.settings import EncoderSettings, passage_text

if TYPE_CHECKING:  # numpy loads when a run encodes, not when plugins are discovered
    import numpy as np

AUTO = "auto"
ST_POOLING = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
              "pooling_mode_lasttoken": "last-token"}


def sentence_transformers_config(folder: str) -> dict[str, Any]:
    """Pooling and normalisation a sentence-transformers model folder declares, if any."""
    modules_file = Path(folder) / "modules.json"
    if not modules_file.is_file():
        return {}
    modules = json.loads(modules_file.read_text())
    found: dict[str, Any] = {"normalize": any(m.get("type", "").endswith(".Normalize") for m in modules)}
    for module in modules:
        pooling_file = Path(folder) / module.get("path", "") / "config.json"
        if module.get("type", "").endswith(".Pooling") and pooling_file.is_file():
            config = json.loads(pooling_file.read_text())
            found["pooling"] = next((v for k, v in ST_POOLING.items() if config.get(k)), None)
    return found


class DenseRetriever(Component):
    """A bi-encoder with a faiss index; trainable with InfoNCE (see ``retbench_dense.training``)."""

    version = "1"
    search_time_params: ClassVar[tuple[str, ...]] = ("dim",)  # one index serves every Matryoshka prefix
    hub_models: ClassVar[tuple[str, str | None]]
    offline_model: ClassVar[str] = "offline:all-minilm-l6-v2"
    method: ClassVar[dict[str, Any]] = {"pooling": "cls", "normalize": False, "query_prefix": "",
                                        "passage_prefix": "", "bidirectional": False}
    default_negatives: ClassVar[str] = "bm25-hard"
    separate_towers: ClassVar[bool] = True  # auto passage_model: a second copy of the query model
    recipe: ClassVar[dict[str, Any]] = {}  # training defaults of the method (see docs/methods)
    TRAINING_DEFAULTS: ClassVar[dict[str, Any]] = {
        "epochs": 1, "train_batch_size": 16, "learning_rate": 2e-5, "warmup_ratio": 0.1, "weight_decay": 0.01,
        "max_grad_norm": 1.0, "hard_negatives": 1, "loss": "info-nce", "matryoshka_dims": ()}

    def __init__(
        self,
        model: str = AUTO,
        passage_model: str | None = AUTO,
        pooling: str = AUTO,
        normalize: bool | str = AUTO,
        query_prefix: str = AUTO,
        passage_prefix: str = AUTO,
        query_max_length: int = 64,
        passage_max_length: int = 256,
        dim: int | None = None,
        dtype: str = "float32",
        device: str = AUTO,
        batch_size: int = 32,
        index_factory: str = "Flat",
        search_params: str = "",
        embedding_dtype: str = "float32",
        shard_size: int = 10_000,
        devices: list[str] | None = None,
        epochs: int | str = AUTO,
        train_batch_size: int | str = AUTO,
        learning_rate: float | str = AUTO,
        warmup_ratio: float | str = AUTO,
        weight_decay: float | str = AUTO,
        max_grad_norm: float | str = AUTO,
        gradient_accumulation: int = 1,
        hard_negatives: int | str = AUTO,
        temperature: float | str = AUTO,
        max_steps: int | None = None,
        checkpoint_every: int = 50,
        loss: str = AUTO,
        matryoshka_dims: list[int] | str | None = AUTO,
        init: str | None = None,
    ) -> None:
        self.model = model
        self.passage_model = passage_model
        self.pooling = pooling
        self.normalize = normalize
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.query_max_length = query_max_length
        self.passage_max_length = passage_max_length
        self.dim = dim
        self.dtype = dtype
        self.device = device
        self.batch_size = batch_size
        self.index_factory = index_factory
        self.search_params = search_params
        self.embedding_dtype = embedding_dtype
        self.shard_size = shard_size
        self.devices = devices
        self.epochs = epochs
        self.train_batch_size = train_batch_size
        self.learning_rate = learning_rate
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.gradient_accumulation = gradient_accumulation
        self.hard_negatives = hard_negatives
        self.temperature = temperature
        self.max_steps = max_steps
        self.checkpoint_every = checkpoint_every
        self.loss = loss
        self.matryoshka_dims = matryoshka_dims
        self.init = init

    # -- what "auto" means --------------------------------------------------------------------
    @functools.cached_property
    def models_(self) -> tuple[ModelRef, ModelRef | None]:
        query_spec, passage_spec = self.model, self.passage_model
        if query_spec == AUTO:
            query_spec = default_model(self.hub_models[0], self.offline_model)
            if passage_spec == AUTO:
                passage_spec = self.hub_models[1] if query_spec == self.hub_models[0] else AUTO
        if passage_spec == AUTO:
            passage_spec = query_spec if self.separate_towers else None
        return resolve_model(query_spec), resolve_model(passage_spec) if passage_spec else None

    @functools.cached_property
    def init_(self) -> Path | None:
        """The saved bi-encoder ``init`` names: a fit's ``model`` folder, the fit folder, the
        record (``.json``) of a run that trained one (its ``training.fit.model``), or that run's
        id (8 or more leading hex digits; its record in the cache's ``runs/``)."""
        if self.init is None:
            return None
        folder = Path(self.init).expanduser()
        if not folder.exists() and re.fullmatch(r"[0-9a-f]{8,64}", str(self.init)):
            try:
                folder = run_record_path(str(self.init))
            except RetbenchError as exc:
                raise ConfigError(f"init {exc}") from None
        if folder.suffix == ".json" and folder.is_file():
            fitted = json.loads(folder.read_text("utf-8")).get("training", {}).get("fit", {}).get("model")
            if not fitted:
                raise ConfigError(f"init '{self.init}': the record has no training.fit.model (the run trained nothing)")
            folder = Path(fitted)
        if (folder / "model" / "settings.json").is_file():
            folder = folder / "model"
        if not (folder / "settings.json").is_file():
            raise ConfigError(f"init '{self.init}': not a trained bi-encoder (no settings.json in it or in its model/)")
        return folder.resolve()

    @functools.cached_property
    def settings_(self) -> EncoderSettings:
        declared = sentence_transformers_config(self.models_[0].path)
        if self.init_ is not None:  # a warm start keeps the settings it was trained with
            declared = json.loads((self.init_ / "settings.json").read_text())

        def pick(name: str, value: Any) -> Any:
            return value if value != AUTO else declared.get(name) or self.method[name]

        if self.dim is not None and (not isinstance(self.dim, int) or self.dim <= 0):
            raise ConfigError(f"dim must be a positive integer, got {self.dim!r}")
        if self.embedding_dtype not in STORAGE_DTYPES:
            raise ConfigError(f"embedding_dtype must be one of {', '.join(STORAGE_DTYPES)}")
        return EncoderSettings(
            pooling=pick("pooling", self.pooling),
            normalize=bool(self.normalize if self.normalize != AUTO
                           else declared.get("normalize", self.method["normalize"])),
            query_prefix=pick("query_prefix", self.query_prefix),
            passage_prefix=pick("passage_prefix", self.passage_prefix),
            query_max_length=self.query_max_length,
            passage_max_length=self.passage_max_length,
            bidirectional=self.method["bidirectional"],
        )

    @functools.cached_property
    def training_(self) -> dict[str, Any]:
        """Training settings: the explicit ones, else the method's recipe, else retbench's."""
        resolved = {}
        for name, fallback in self.TRAINING_DEFAULTS.items():
            value = getattr(self, name)
            resolved[name] = value if value != AUTO else self.recipe.get(name, fallback)
        resolved["matryoshka_dims"] = tuple(int(d) for d in resolved["matryoshka_dims"] or ())
        return resolved

    @property
    def temperature_(self) -> float:
        if self.temperature != AUTO:
            return float(self.temperature)
        return 0.05 if self.settings_.normalize else 1.0

    def fingerprint(self) -> dict[str, Any]:
        query, passage = self.models_
        from retbench_dense.backbone import backbone_size, provenance

        init = None
        if self.init_ is not None:
            init = resolve_model(str(self.init_)).identity()
        # "dim" stays in the settings (always None: it is a search-time parameter now), so the
        # index and fit keys of runs made before that change stay valid
        return {"query_model": query.identity(), "passage_model": passage.identity() if passage else None,
                "init": init, "settings": {**vars(self.settings_), "dim": None}, "temperature": self.temperature_,
                "training": {**self.training_, "matryoshka_dims": list(self.training_["matryoshka_dims"])},
                "backbone": backbone_size(self.init_ / "query" if self.init_ else query, dim=None),
                **({"made": made} if (made := provenance(query)) else {})}

    # -- the model ----------------------------------------------------------------------------
    @property
    def device_(self) -> str:
        return torch_device(self.device)

    def encoder(self) -> Any:
        """The BiEncoder: the trained model after ``fit`` / ``load_fit``, else the starting checkpoint."""
        from retbench_dense.encoder import BiEncoder

        if getattr(self, "encoder_", None) is None:
            fitted = getattr(self, "model_dir_", None)
            if fitted is not None:
                self.encoder_ = BiEncoder.load(fitted, dtype=self.dtype, device=self.device_)
            else:
                self.encoder_ = self._start_encoder()
        return self.encoder_

    def _start_encoder(self) -> Any:
        from retbench_dense.encoder import BiEncoder, load_tower

        if self.init_ is not None:
            return self._warm_start()
        query, passage = self.models_
        bidirectional = self.settings_.bidirectional
        q_model, q_tok = load_tower(query.path, revision=_hub_revision(query), dtype=self.dtype,
                                    bidirectional=bidirectional)
        p_model = p_tok = None
        if passage is not None:
            p_model, p_tok = load_tower(passage.path, revision=_hub_revision(passage), dtype=self.dtype,
                                        bidirectional=bidirectional)
        return BiEncoder(q_model, q_tok, p_model, p_tok, settings=self.settings_).to(self.device_)

    def _warm_start(self) -> Any:
        """The towers of a trained bi-encoder, with this retriever's settings; a shared tower
        is copied into two when the method trains separate towers (ANCE from DPR)."""
        import copy

        from retbench_dense.encoder import BiEncoder, load_tower

        load = functools.partial(load_tower, revision=None, dtype=self.dtype,
                                 bidirectional=self.settings_.bidirectional)
        q_model, q_tok = load(str(self.init_ / "query"))
        p_model = p_tok = None
        if (self.init_ / "passage").is_dir():
            p_model, p_tok = load(str(self.init_ / "passage"))
        elif self.models_[1] is not None:
            p_model, p_tok = copy.deepcopy(q_model), q_tok
        return BiEncoder(q_model, q_tok, p_model, p_tok, settings=self.settings_).to(self.device_)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        encoder = getattr(self, "query_encoder_", None) or self.encoder()
        return encoder.encode(texts, side="query", batch_size=self.batch_size)

    def encode_passages(self, passages: list[Passage]) -> np.ndarray:
        separator = self.settings_.title_separator
        return self.encoder().encode([passage_text(p, separator) for p in passages], side="passage",
                                     batch_size=self.batch_size)

    # -- index and search ---------------------------------------------------------------------
    def index(self, corpus: Corpus, *, workdir: Path) -> None:
        from retbench_dense import faiss_index

        store = EmbeddingStore(workdir / "embeddings", rows=len(corpus), shard_size=self.shard_size)
        missing = store.missing()
        if self.devices and len(self.devices) > 1 and missing:
            from retbench_dense.parallel import encode_on_devices

            self.encode_workers_ = encode_on_devices(self, corpus, store, missing, devices=list(self.devices))
        else:
            encode_shards(self.encode_passages, corpus, store, missing, dtype=self.embedding_dtype,
                          description=f"encoding ({self.name})")
        self.index_ = faiss_index.build_index(store, dim=store.read(0).shape[1], factory=self.index_factory,
                                              search_params=self.search_params)
        faiss_index.save(self.index_, workdir / "index.faiss")
        self.ids_ = corpus.ids
        atomic_write_json(workdir / "ids.json", self.ids_)
        self.store_ = store
        self._search_at_dim(store)

    def load_index(self, *, workdir: Path) -> None:
        from retbench_dense import faiss_index

        self.index_ = faiss_index.load(workdir / "index.faiss", search_params=self.search_params)
        self.ids_ = json.loads((workdir / "ids.json").read_text("utf-8"))
        self.store_ = EmbeddingStore(workdir / "embeddings", rows=len(self.ids_), shard_size=self.shard_size)
        self._search_at_dim(self.store_)

    def _search_at_dim(self, store: EmbeddingStore) -> None:
        """With ``dim`` below the stored width, search an index of the cached vectors' prefixes:
        the full-width index and its embeddings serve every Matryoshka dimension."""
        from retbench_dense import faiss_index

        if self.dim is None or self.dim >= self.index_.d:
            return
        self.index_ = faiss_index.build_index(store, dim=self.dim, factory=self.index_factory,
                                              search_params=self.search_params, normalize=self.settings_.normalize)

    def search(self, queries: Queries, *, k: int) -> Run:
        qids = list(queries)
        if not qids:
            return {}
        from retbench_dense import faiss_index

        vectors = faiss_index.prefix(self.encode_queries([queries[q] for q in qids]), self.dim,
                                     normalize=self.settings_.normalize)
        scores, rows = faiss_index.search(self.index_, vectors, k=k, batch_size=1024)
        return {
            qid: {self.ids_[r]: float(s) for s, r in zip(scores[i], rows[i]) if r >= 0}
            for i, qid in enumerate(qids)
        }

    # -- the query tower trained against this index (REALM / ORQA fine-tuning) ------------------
    def trainable_query_encoder(self) -> Any:
        """A trainable copy of the query tower (:class:`retbench_dense.query_tower.QueryTower`):
        called on texts it returns their vectors, with gradients, in this index's space;
        ``save(folder)`` writes what :meth:`use_query_encoder` loads."""
        from retbench_dense.query_tower import QueryTower

        return QueryTower.copy_of(self.encoder(), dim=self.dim)

    def neighbours(self, vectors: np.ndarray, *, k: int) -> list[tuple[list[str], np.ndarray]]:
        """For each query vector, the ids of its top ``k`` passages in the index, best first, and
        their indexed vectors as searched (``(found, width)``); these stay fixed."""
        from retbench_dense import faiss_index

        _, rows = faiss_index.search(self.index_, vectors, k=k, batch_size=1024)
        found = []
        for row in rows:
            row = row[row >= 0]  # approximate indexes may find fewer than k
            stored = faiss_index.prefix(self.store_.rows_at(row), self.dim, normalize=self.settings_.normalize)
            found.append(([self.ids_[r] for r in row], stored))
        return found

    def use_query_encoder(self, folder: Path) -> None:
        """Encode queries with the tower saved in ``folder`` (the passages keep their index)."""
        from retbench_dense.encoder import BiEncoder

        self.query_encoder_ = BiEncoder.load(folder, dtype=self.dtype, device=self.device_)

    # -- training -----------------------------------------------------------------------------
    def fit(self, train: DatasetSplit, *, negatives: Any, workdir: Path, seed: int) -> dict[str, Any]:
        from retbench_dense.training import TrainingSettings, train_bi_encoder

        t = self.training_
        temperature = self.temperature_
        if self.temperature == AUTO and getattr(negatives, "loss_temperature", None) is not None:
            temperature = float(negatives.loss_temperature)  # the sampler's method trains at its own (SyNeg)
        settings = TrainingSettings(
            epochs=t["epochs"], batch_size=t["train_batch_size"], learning_rate=t["learning_rate"],
            warmup_ratio=t["warmup_ratio"], weight_decay=t["weight_decay"], max_grad_norm=t["max_grad_norm"],
            gradient_accumulation=self.gradient_accumulation, hard_negatives=t["hard_negatives"],
            temperature=temperature, max_steps=self.max_steps, checkpoint_every=self.checkpoint_every,
            seed=seed, loss=t["loss"], matryoshka_dims=t["matryoshka_dims"])
        self.model_dir_ = None
        self.encoder_ = self._start_encoder()
        report = train_bi_encoder(self, train, sampler=negatives, settings=settings, workdir=workdir)
        self.encoder_.save(workdir / "model")
        (workdir / "checkpoint.pt").unlink(missing_ok=True)  # the finished model replaces it
        self.load_fit(workdir=workdir)
        return report

    def load_fit(self, *, workdir: Path) -> None:
        self.model_dir_ = workdir / "model"
        self.encoder_ = None
        self.query_encoder_ = None


def _hub_revision(ref: ModelRef) -> str | None:
    local = Path(ref.path).is_dir()
    return None if local else ref.revision


class DPR(DenseRetriever):
    """Dense Passage Retrieval (Karpukhin et al., 2020): two towers, [CLS] vectors, dot product,
    in-batch negatives plus one BM25 hard negative per question shared across the batch.
    Training defaults are DPR's NQ recipe (``conf/train/biencoder_nq.yaml``)."""

    name = "dpr"
    version = "2"
    hub_models = ("facebook/dpr-question_encoder-single-nq-base", "facebook/dpr-ctx_encoder-single-nq-base")
    recipe = {"epochs": 40, "train_batch_size": 128, "learning_rate": 2e-5, "weight_decay": 0.0,
              "max_grad_norm": 2.0, "hard_negatives": 1, "loss": "info-nce"}


class ANCE(DenseRetriever):
    """ANCE (Xiong et al., 2021): DPR's architecture trained with negatives from an ANN index
    of the model being trained, refreshed as it learns, warm-started from a BM25-negative DPR
    model (``init``). Defaults are ANCE's NQ recipe (``commands/run_train_dpr.sh``): the
    triplet loss, lr 1e-5, batch 16 x 8 GPUs."""

    name = "ance"
    version = "2"
    hub_models = ("castorini/ance-dpr-question-multi", "castorini/ance-dpr-context-multi")
    default_negatives = "ann"
    recipe = {"train_batch_size": 128, "learning_rate": 1e-5, "weight_decay": 0.0, "max_grad_norm": 2.0,
              "hard_negatives": 1, "loss": "triplet"}


class DRAMA(DenseRetriever):
    """DRAMA (Ma et al., 2025): a pruned Llama with bidirectional attention, mean pooling,
    normalised vectors, ``Query: `` prefix, one shared tower, trained with Matryoshka
    dimensions (``matryoshka_dims``; search at a prefix with ``dim``). Offline it is built from
    SmolLM2-135M (Llama architecture) made bidirectional. Training defaults follow the DRAGON
    configuration of dpr-scale, which DRAMA is trained with."""

    name = "drama"
    version = "2"
    hub_models = ("facebook/drama-base", None)
    offline_model = "offline:smollm2-135m-instruct"
    separate_towers = False
    method = {"pooling": "mean", "normalize": True, "query_prefix": "Query: ", "passage_prefix": "",
              "bidirectional": True}
    recipe = {"epochs": 20, "train_batch_size": 64, "learning_rate": 3e-5, "max_grad_norm": 2.0,
              "hard_negatives": 1, "loss": "info-nce", "matryoshka_dims": (256,)}
