"""The text a model is pruned and recovered on: a text file (one document per line), or a
JSON-lines file with a ``text`` field (and an optional ``title``, as a BEIR ``corpus.jsonl``),
tokenised, joined with the end-of-sequence token and cut into fixed-length blocks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from retbench import DataFormatError


def read_texts(path: Path) -> list[str]:
    """The documents of ``path``; a malformed JSON line is an error naming the file and line."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            if path.suffix != ".jsonl":
                texts.append(line)
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"not JSON ({exc.msg})", path=path, line=number) from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataFormatError("expected an object with a string", path=path, line=number, field="text")
            title = record.get("title")
            texts.append(f"{title}: {record['text']}" if isinstance(title, str) and title else record["text"])
    if not texts:
        raise DataFormatError("no text", path=path)
    return texts


def text_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def token_blocks(texts: list[str], tokenizer: Any, length: int, *, source: Path) -> torch.Tensor:
    """``(blocks, length)`` token ids: the documents' tokens joined by EOS, the tail dropped."""
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids.append(tokenizer.eos_token_id)
    count = len(ids) // length
    if count == 0:
        raise DataFormatError(f"{len(ids)} tokens, fewer than one block of {length}", path=source)
    return torch.tensor(ids[: count * length]).view(count, length)


def split_blocks(blocks: torch.Tensor, held_out: int, seed: int, *, source: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(training blocks, held-out blocks): a seeded shuffle, the first ``held_out`` set aside."""
    if held_out >= len(blocks):
        raise DataFormatError(f"{len(blocks)} blocks of text; {held_out} held out would leave none to train on",
                              path=source)
    order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))
    return blocks[order[held_out:]], blocks[order[:held_out]]
