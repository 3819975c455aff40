"""Masks applied to a transformers Llama-architecture causal LM, and the smaller model they
leave. The masks act where Sheared-LLaMA puts them (``composer_llama.py``): a head's output
before ``o_proj``, an FFN intermediate dimension before ``down_proj``, a layer's attention and
FFN outputs, and the hidden dimensions of the embeddings, of every sub-layer's output and
inside each RMSNorm (its statistics over the dimensions still present)."""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import torch

from retbench import ConfigError
from retbench_prune.masks import Shape


def shape_of(model: Any) -> Shape:
    """The prunable shape of ``model`` (a LlamaForCausalLM or a model of the same layout)."""
    return shape_of_config(model.config)


def shape_of_config(config: Any) -> Shape:
    """The prunable shape a Llama-architecture config describes."""
    if getattr(config, "model_type", None) != "llama":
        raise ConfigError(f"prune: only Llama-architecture models can be pruned, got model_type "
                          f"'{getattr(config, 'model_type', None)}'")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ConfigError("prune: Llama models with attention or MLP biases are not supported")
    heads = config.num_attention_heads
    return Shape(layers=config.num_hidden_layers, heads=heads, kv_heads=config.num_key_value_heads or heads,
                 head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
                 intermediate=config.intermediate_size, hidden=config.hidden_size, vocab=config.vocab_size,
                 tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)))


class MaskedModel:
    """Forward hooks that multiply ``model``'s units by the masks in ``zs`` (a dict of the
    four kinds, set before each forward; None leaves the model as it is)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.shape = shape_of(model)
        self.zs: dict[str, torch.Tensor] | None = None
        inner = model.model
        self.handles = [inner.embed_tokens.register_forward_hook(self._embedding),
                        inner.norm.register_forward_hook(self._norm)]
        for index, layer in enumerate(inner.layers):
            self.handles += [
                layer.input_layernorm.register_forward_hook(self._norm),
                layer.post_attention_layernorm.register_forward_hook(self._norm),
                layer.self_attn.o_proj.register_forward_pre_hook(partial(self._heads, index)),
                layer.self_attn.o_proj.register_forward_hook(partial(self._output, index)),
                layer.mlp.down_proj.register_forward_pre_hook(partial(self._intermediate, index)),
                layer.mlp.down_proj.register_forward_hook(partial(self._output, index)),
            ]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _embedding(self, module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        return None if self.zs is None else output * self.zs["hidden"][0]

    def _norm(self, module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if self.zs is None:
            return None
        hidden = self.zs["hidden"][0]
        states = inputs[0].to(torch.float32)
        present = states[..., hidden.detach() != 0]
        normed = states * torch.rsqrt(present.pow(2).mean(-1, keepdim=True) + module.variance_epsilon)
        return module.weight * normed.to(inputs[0].dtype) * hidden

    def _heads(self, index: int, module: Any, args: Any) -> Any:
        if self.zs is None:
            return None
        states = args[0]
        heads = self.zs["head"][index]
        masked = states.unflatten(-1, (heads.shape[0], -1)) * heads[:, None]
        return (masked.flatten(-2), *args[1:])

    def _intermediate(self, index: int, module: Any, args: Any) -> Any:
        return None if self.zs is None else (args[0] * self.zs["intermediate"][index], *args[1:])

    def _output(self, index: int, module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        return None if self.zs is None else output * self.zs["layer"][0][index] * self.zs["hidden"][0]


def _kept(values: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(values, as_tuple=True)[0]


def pruned_model(model: Any, zs: dict[str, torch.Tensor]) -> Any:
    """The smaller model ``zs`` (deterministic masks) leave of ``model``: masked units removed,
    the kept units' mask values folded into the weights that produce their outputs (as
    ``prune_params`` in Sheared-LLaMA). Hidden dimensions are kept or dropped, their mask values
    not folded: with tied input and output embeddings no weight carries them exactly (Sheared-LLaMA
    folds them into both the embeddings and the untied output matrix, which its code calls a bug)."""
    from transformers import AutoModelForCausalLM

    source = shape_of(model)
    hidden = _kept(zs["hidden"][0])
    layers = _kept(zs["layer"][0])
    heads_left = int((zs["head"][0] != 0).sum())
    intermediate_left = int((zs["intermediate"][0] != 0).sum())
    config = copy.deepcopy(model.config)
    config.hidden_size, config.num_hidden_layers = len(hidden), len(layers)
    config.num_attention_heads, config.intermediate_size = heads_left, intermediate_left
    config.head_dim = source.head_dim
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[int(i)] for i in layers]
    torch_dtype = next(model.parameters()).dtype
    small = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    big = model.model
    with torch.no_grad():
        small.model.embed_tokens.weight.copy_(big.embed_tokens.weight[:, hidden])
        small.model.norm.weight.copy_(big.norm.weight[hidden])
        if not source.tied_embeddings:
            small.lm_head.weight.copy_(model.lm_head.weight[:, hidden])
        for new, old in enumerate(layers.tolist()):
            _copy_layer(small.model.layers[new], big.layers[old], zs, old, hidden, source.head_dim)
    if source.tied_embeddings:
        small.tie_weights()
    return small


def _copy_layer(new: Any, old: Any, zs: dict[str, torch.Tensor], index: int, hidden: torch.Tensor,
                head_dim: int) -> None:
    scale = zs["layer"][0][index]
    heads = zs["head"][index]
    kept_heads = _kept(heads)
    columns = (kept_heads[:, None] * head_dim + torch.arange(head_dim)).flatten()
    head_values = heads[kept_heads].repeat_interleave(head_dim)
    attention, mlp = old.self_attn, old.mlp
    new.input_layernorm.weight.copy_(old.input_layernorm.weight[hidden])
    new.post_attention_layernorm.weight.copy_(old.post_attention_layernorm.weight[hidden])
    new.self_attn.q_proj.weight.copy_(attention.q_proj.weight[columns][:, hidden])
    new.self_attn.k_proj.weight.copy_(attention.k_proj.weight[:, hidden])
    new.self_attn.v_proj.weight.copy_(attention.v_proj.weight[:, hidden])
    new.self_attn.o_proj.weight.copy_(attention.o_proj.weight[hidden][:, columns] * head_values * scale)
    units = zs["intermediate"][index]
    kept_units = _kept(units)
    new.mlp.gate_proj.weight.copy_(mlp.gate_proj.weight[kept_units][:, hidden])
    new.mlp.up_proj.weight.copy_(mlp.up_proj.weight[kept_units][:, hidden] * units[kept_units][:, None])
    new.mlp.down_proj.weight.copy_(mlp.down_proj.weight[hidden][:, kept_units] * scale)


def binarized_hidden(zs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``zs`` with the hidden masks set to exactly 0 or 1 (what ``pruned_model`` keeps)."""
    return {**zs, "hidden": (zs["hidden"] != 0).to(zs["hidden"].dtype)}
