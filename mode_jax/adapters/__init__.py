"""Parameter-efficient adapters: LoRA, MoLoRA, MoLoRA-SD and MoDE (Mixture of Dyadic Experts).

    acfg = adapters.AdapterConfig("mode", experts=16, rank=4)           # MoDE 16x4 (p = 1)
    model = model.Transformer(cfg, adapter=acfg)
    params = adapters.combine(base_params, adapters.init_adapter(cfg, acfg, rng))
    logits = model.apply({"params": params}, tokens, task_ids=task_ids)

See `config.py` for the methods' formulas and `module.py` for the parameter layout.
"""

from mode_jax.adapters.config import AdapterConfig
from mode_jax.adapters.export import load_adapter, save_adapter
from mode_jax.adapters.merge import merge
from mode_jax.adapters.module import Adapter
from mode_jax.adapters.params import (combine, count_params, init_adapter,
                                      lora_rank_for_budget, matrix_dims, matrix_params,
                                      param_report, split, trainable_mask)

__all__ = ["AdapterConfig", "Adapter", "count_params", "lora_rank_for_budget", "matrix_dims", "matrix_params",
           "trainable_mask", "split", "combine", "init_adapter", "param_report", "merge",
           "save_adapter", "load_adapter"]
