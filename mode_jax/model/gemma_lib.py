"""Parameter interop with the gemma library (`gemma` on PyPI, Google DeepMind's JAX library):
the project's Gemma 3 parameter tree <-> `gm.nn.Gemma3_*`'s, so that one set of weights runs
in both (the project's benchmarks feed its weights to the gemma library's sampler and LoRA).

    gparams = gemma_lib.to_gemma_library(cfg, params)     # {"embedder": ..., "layer_0": ...}
    params = gemma_lib.from_gemma_library(cfg, gparams)

Layouts (E embed, H heads, K kv heads, D head dim, F mlp):

| project (`layers_i`)                    | gemma library (`layer_i`)                       |
|---|---|
| attn.q.kernel [E, H, D]                 | attn.q_einsum.w [H, E, D]                       |
| attn.k / attn.v .kernel [E, K, D]       | attn.kv_einsum.w [2, K, E, D] (k, v)            |
| attn.o.kernel [H, D, E]                 | attn.attn_vec_einsum.w [H, D, E]                |
| attn.q_norm / k_norm                    | attn._query_norm / _key_norm                    |
| mlp.gate / mlp.up .kernel [E, F]        | mlp.gating_einsum [2, F, E] (gate, up)          |
| mlp.down.kernel [F, E]                  | mlp.linear [F, E]                               |
| attn_norm / post_attn_norm              | pre_attention_norm / post_attention_norm        |
| mlp_norm / post_mlp_norm                | pre_ffw_norm / post_ffw_norm                    |
| embedder.embedding [V, E]               | embedder.input_embedding [V, E]                 |

Norm scales are stored the same way in both ((1 + scale) applied). Only Gemma 3 text models
with unstacked layers (`scan_layers=False`) and no adapter leaves; numpy in, numpy out.
Tested by equal logits on Gemma 3 270M when the gemma library is installed
(tests/model/test_gemma_lib.py).
"""

from __future__ import annotations

import numpy as np

_NORMS = (("attn_norm", "pre_attention_norm"), ("post_attn_norm", "post_attention_norm"),
          ("mlp_norm", "pre_ffw_norm"), ("post_mlp_norm", "post_ffw_norm"))


def _check(cfg) -> None:
  if not cfg.model_type.startswith("gemma3") or cfg.scan_layers:
    raise ValueError(f"gemma library interop: Gemma 3 text models with unstacked layers only, "
                     f"got model_type={cfg.model_type!r} scan_layers={cfg.scan_layers}")


def to_gemma_library(cfg, params: dict) -> dict:
  """The gemma library's parameter tree of the project's Gemma 3 `params` (numpy arrays)."""
  _check(cfg)
  a = lambda x: np.asarray(x)
  out = {"embedder": {"input_embedding": a(params["embedder"]["embedding"])},
         "final_norm": {"scale": a(params["final_norm"]["scale"])}}
  for i in range(cfg.num_layers):
    p = params[f"layers_{i}"]
    at, mlp = p["attn"], p["mlp"]
    layer = {
        "attn": {
            "q_einsum": {"w": a(at["q"]["kernel"]).transpose(1, 0, 2)},
            "kv_einsum": {"w": np.stack([a(at["k"]["kernel"]).transpose(1, 0, 2),
                                         a(at["v"]["kernel"]).transpose(1, 0, 2)])},
            "attn_vec_einsum": {"w": a(at["o"]["kernel"])},
            "_query_norm": {"scale": a(at["q_norm"]["scale"])},
            "_key_norm": {"scale": a(at["k_norm"]["scale"])}},
        "mlp": {"gating_einsum": np.stack([a(mlp["gate"]["kernel"]).T, a(mlp["up"]["kernel"]).T]),
                "linear": a(mlp["down"]["kernel"])}}
    for ours, theirs in _NORMS:
      layer[theirs] = {"scale": a(p[ours]["scale"])}
    out[f"layer_{i}"] = layer
  return out


def from_gemma_library(cfg, gparams: dict) -> dict:
  """The project's parameter tree of a gemma library Gemma 3 tree (inverse of
  `to_gemma_library`); a missing key is a KeyError naming it."""
  _check(cfg)
  g = gparams.get("params", gparams)
  a = lambda x: np.asarray(x)
  out = {"embedder": {"embedding": a(g["embedder"]["input_embedding"])},
         "final_norm": {"scale": a(g["final_norm"]["scale"])}}
  for i in range(cfg.num_layers):
    p = g[f"layer_{i}"]
    at, mlp = p["attn"], p["mlp"]
    kv = a(at["kv_einsum"]["w"])
    gating = a(mlp["gating_einsum"])
    layer = {
        "attn": {"q": {"kernel": a(at["q_einsum"]["w"]).transpose(1, 0, 2)},
                 "k": {"kernel": kv[0].transpose(1, 0, 2)},
                 "v": {"kernel": kv[1].transpose(1, 0, 2)},
                 "o": {"kernel": a(at["attn_vec_einsum"]["w"])},
                 "q_norm": {"scale": a(at["_query_norm"]["scale"])},
                 "k_norm": {"scale": a(at["_key_norm"]["scale"])}},
        "mlp": {"gate": {"kernel": gating[0].T}, "up": {"kernel": gating[1].T},
                "down": {"kernel": a(mlp["linear"])}}}
    for ours, theirs in _NORMS:
      layer[ours] = {"scale": a(p[theirs]["scale"])}
    out[f"layers_{i}"] = layer
  return out
