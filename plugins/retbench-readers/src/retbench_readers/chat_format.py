"""How a prompt becomes the model's input, shared by the local generators (``hf``, ``ct2``).

Both engines must see the same tokens for the same prompt, or their answers (and the
agreement measured between them) differ for reasons that are not the engine's. A prompt goes
through the tokenizer's chat template when it has one (``chat_template=auto``), with an
optional system message; the text then becomes token ids, with the tokenizer's own special
tokens only when no template is used (the template writes its own), cut at
``max_input_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AUTO = "auto"


@dataclass(frozen=True)
class ChatFormat:
    tokenizer: Any
    chat_template: bool | str = AUTO
    system_prompt: str | None = None
    max_input_tokens: int = 2048

    @property
    def uses_template(self) -> bool:
        if self.chat_template == AUTO:
            return bool(getattr(self.tokenizer, "chat_template", None))
        return bool(self.chat_template)

    @property
    def add_special_tokens(self) -> bool:
        return not self.uses_template

    def format(self, prompt: str) -> str:
        """The text the model sees for ``prompt`` (chat template applied when used)."""
        if not self.uses_template:
            return prompt
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages.append({"role": "user", "content": prompt})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of an already formatted ``text``, as the batched ``hf`` path makes them."""
        return self.tokenizer(text, add_special_tokens=self.add_special_tokens, truncation=True,
                              max_length=self.max_input_tokens)["input_ids"]


def scoring_ids(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) for ``loglikelihood``: no special tokens, except a BOS
    (else EOS) standing in for an empty context, since the first continuation token needs
    something to be predicted from."""
    prefix = tokenizer(context, add_special_tokens=False)["input_ids"]
    if not prefix:
        prefix = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
    return prefix, tokenizer(continuation, add_special_tokens=False)["input_ids"]
