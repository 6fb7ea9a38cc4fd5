"""Adapters in the formats other tools read: PEFT LoRA directories and merged HF checkpoints.

    export_peft_lora("runs/x/peft", params, acfg, cfg)       # PeftModel.from_pretrained(hf, dir)
    export_merged("runs/x/merged", params, acfg, cfg, task_names=["qa", "sum"])  # one HF dir each

PEFT: `adapter_config.json` (peft_type LORA, r, lora_alpha = scale * r so PEFT's alpha / r is
our `scale`, target_modules as HF module names) and `adapter_model.safetensors` with
`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` [r, in] and `lora_B.weight`
[out, r] (HF's [out, in] convention; our A [*in, r] and B [1, r, *out] flattened and
transposed). vLLM and PEFT read this. Only plain LoRA has a PEFT form; routed methods
(MoLoRA, MoLoRA-SD, MoDE) have none, so with `router="task"` they export as one merged HF
checkpoint per task (`merge.merge`), which any HF tool loads as a normal model; token-routed
adapters cannot be merged (routing depends on the input) and raise.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import flax.linen as nn
import jax
import numpy as np
from safetensors.numpy import save_file

from mode_jax.adapters.config import AdapterConfig
from mode_jax.adapters.merge import merge
from mode_jax.adapters.params import split
from mode_jax.atomic_io import atomic_directory
from mode_jax.model import hf_io
from mode_jax.model.config import ModelConfig

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
_HF_MODULE = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
              "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
              "down": "mlp.down_proj"}


def peft_tensors(adapter_tree: dict, acfg: AdapterConfig) -> dict[str, np.ndarray]:
  """PEFT tensor name -> array for a LoRA adapter-only tree (per-layer, not scanned)."""
  out = {}
  for layer, node in adapter_tree.items():
    if not layer.startswith("layers_"):
      raise ValueError(f"export_peft_lora: unexpected adapter subtree {layer!r} (scanned "
                       f"params: unstack them first)")
    i = int(layer.split("_", 1)[1])
    for block in ("attn", "mlp"):
      for name, proj in node.get(block, {}).items():
        ad = proj["adapter"]
        a, b = np.asarray(ad["A"], np.float32), np.asarray(ad["B"], np.float32)
        r = acfg.rank
        prefix = f"base_model.model.model.layers.{i}.{_HF_MODULE[name]}"
        out[f"{prefix}.lora_A.weight"] = np.ascontiguousarray(a.reshape(-1, r).T)
        out[f"{prefix}.lora_B.weight"] = np.ascontiguousarray(b.reshape(r, -1).T)
  return out


def export_peft_lora(path: str, params, acfg: AdapterConfig, cfg: ModelConfig, *,
                     base_model_name_or_path: str = "") -> None:
  """Writes a PEFT LoRA directory (atomically) from `params` (full or adapter-only tree)."""
  if acfg.method != "lora":
    raise ValueError(f"export_peft_lora: {acfg.describe()} has no PEFT form (only LoRA); "
                     f"export task-routed adapters with export_merged")
  params = nn.meta.unbox(params)
  if "layers" in params:
    params = hf_io.unstack_layers(params, cfg.num_layers)
  _, ad = split(jax.device_get(params))
  tensors = peft_tensors(ad, acfg)
  config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": acfg.rank,
            "lora_alpha": acfg.scale * acfg.rank, "lora_dropout": 0.0, "bias": "none",
            "fan_in_fan_out": False, "target_modules": sorted(
                _HF_MODULE[t].split(".")[1] for t in acfg.targets),
            "base_model_name_or_path": base_model_name_or_path, "inference_mode": True,
            "use_rslora": False, "use_dora": False}
  with atomic_directory(path) as tmp:
    with open(os.path.join(tmp, PEFT_CONFIG), "w") as f:
      json.dump(config, f, indent=2)
    save_file(tensors, os.path.join(tmp, PEFT_WEIGHTS), metadata={"format": "pt"})


def export_merged(path: str, params, acfg: AdapterConfig, cfg: ModelConfig, *,
                  task_names: Optional[Sequence[str]] = None, dtype: str = "float32") -> list:
  """HF checkpoints with the adapters folded in: `path` itself for LoRA, else one directory
  per task (`path/<task name>`, names default to task_<id>). Returns the directories."""
  params = nn.meta.unbox(params)
  if "layers" in params:
    params = hf_io.unstack_layers(params, cfg.num_layers)
  if not acfg.routed:
    hf_io.save_hf_checkpoint(path, cfg, merge(params, acfg), dtype=dtype)
    return [path]
  names = list(task_names or [f"task_{t}" for t in range(acfg.num_tasks)])
  if len(names) != acfg.num_tasks:
    raise ValueError(f"export_merged: {len(names)} task names for num_tasks={acfg.num_tasks}")
  out = []
  for t, name in enumerate(names):
    merged = merge(params, acfg, t)          # raises for token routers
    hf_io.save_hf_checkpoint(os.path.join(path, name), cfg, merged, dtype=dtype)
    out.append(os.path.join(path, name))
  return out
