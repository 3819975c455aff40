"""What the `hf` generator and the `realm` reader share: one model spec and one device."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from retbench import ModelRef, resolve_or_default, torch_device


class OneModel:
    """Mixin for components with ``model`` and ``device`` parameters (``auto``: the hub model
    when the hub answers, else the offline package; the GPU when there is one)."""

    hub_model: ClassVar[str]
    offline_model: ClassVar[str]
    model: str
    device: str

    @functools.cached_property
    def model_ref_(self) -> ModelRef:
        return resolve_or_default(self.model, hub=self.hub_model, offline_spec=self.offline_model)

    def fingerprint(self) -> dict[str, Any]:
        return {"model": self.model_ref_.identity()}

    @property
    def device_(self) -> str:
        return torch_device(self.device)
