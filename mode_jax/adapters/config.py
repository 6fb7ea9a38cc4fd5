"""`AdapterConfig`: which parameter-efficient method wraps which projections, and how it routes.

Per adapted matrix W0 in R^{P x Q} (input dim P, output dim Q), m = `experts`, r = `rank`,
p = `block` (MoDE only; p divides r):

| method      | added to x W0                          | parameters (token routing)  |
|-------------|----------------------------------------|-----------------------------|
| "lora"      | x A B^T                                | r (P + Q)                   |
| "molora"    | sum_i R^i(x) x A_i B_i^T               | m r (P + Q) + P m           |
| "molora_sd" | sum_i R^i(x) x A B_i^T  (shared A)     | P r + m r Q + P m           |
| "mode"      | sum_i sum_k R_k^i(x) x A_k (B_k^i)^T   | P r + m r Q + P m r/p       |

all times `scale` (the paper's formulas carry no alpha/r factor; PEFT's `lora_alpha / r` is
`scale`). MoLoRA and MoLoRA-SD route once per matrix (one "block" of r columns), MoDE once per
block of p columns of the shared A (r/p blocks; p = 1 is the rank-one "dyadic" case).

Routing beyond the paper: `router="task"` replaces x W_R by a learned table T[task_id] of shape
[num_tasks, r/p, m] (Polytropon/MHR style, mergeable per task), `"token+task"` adds both logits.
`top_k > 0` keeps the k largest weights per block (renormalised) and enables the Switch load
balancing loss and the ST-MoE router z-loss, sown into the "aux_loss" collection already
multiplied by their weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import flax.linen as nn

from mode_jax.adapters import module

METHODS = ("lora", "molora", "molora_sd", "mode")
TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
ROUTERS = ("token", "task", "token+task")
INITS = ("normal", "kaiming_uniform")
IMPLS = ("xla", "naive", "pallas")


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
  """Validated, hashable adapter settings (usable as a static Linen attribute).

  Attributes:
    method: "lora" | "molora" | "molora_sd" | "mode".
    experts: m, experts per routed block (must be 1 for "lora").
    rank: r, columns of the down-projection (per expert for "molora").
    block: p, columns per routed block for "mode" (divides r); other methods use p = r.
    targets: wrapped projections, a subset of q, k, v, o, gate, up, down.
    scale: multiplies the adapter output.
    router: "token" (the paper), "task" or "token+task".
    num_tasks: rows of the task routing table (needed when router uses "task").
    top_k: 0 = dense soft routing (the paper); k > 0 keeps the k largest weights per block.
    load_balance_weight / z_loss_weight: weights of the auxiliary losses (top-k routing only for
      load balancing; the z-loss applies to any token router).
    init: "normal" (A ~ N(0, init_std^2), the paper's 0.01) or "kaiming_uniform" (PEFT's default:
      U(-1/sqrt(P), 1/sqrt(P))). B is always zero, so the adapted model starts as the base model.
    router_init_std: routers start small and random, not zero: with B = 0 and a zero router all
      experts of a block receive identical gradients forever (a symmetric fixed point), so they
      would never specialise. Token router: N(0, (router_init_std / sqrt(P))^2), i.e. logits of
      std ~router_init_std for unit-RMS inputs; task table: N(0, router_init_std^2).
    param_dtype: dtype of the adapter parameters (float32 even when the base is bf16).
    impl: "xla" (dense ops), "naive" (loop over experts and blocks; reference/benchmark only)
      or "pallas" (the fused kernel `mode_jax.kernels.adapter_matmul` computes x W0 and the
      adapter term in one pass; GPU / TPU, or interpret mode on CPU).
    kernel_block_sizes: (block_m, block_n, block_k) for impl="pallas" (None: per-backend
      defaults, `kernels.adapter_matmul.BlockSizes.default`).
    kernel_interpret: run the Pallas kernel in interpret mode (None: only on CPU).
  """

  method: str = "lora"
  experts: int = 1
  rank: int = 8
  block: Optional[int] = None
  targets: Sequence[str] = ("q", "k", "v", "o")
  scale: float = 1.0
  router: str = "token"
  num_tasks: int = 0
  top_k: int = 0
  load_balance_weight: float = 0.01
  z_loss_weight: float = 0.0
  init: str = "normal"
  init_std: float = 0.01
  router_init_std: float = 0.1
  param_dtype: str = "float32"
  impl: str = "xla"
  kernel_block_sizes: Optional[tuple] = None
  kernel_interpret: Optional[bool] = None

  def __post_init__(self):
    object.__setattr__(self, "targets", tuple(self.targets))
    def bad(field, msg):
      raise ValueError(f"AdapterConfig.{field}: {msg}")
    if self.method not in METHODS:
      bad("method", f"{self.method!r} is not one of {METHODS}")
    if self.rank < 1:
      bad("rank", f"must be >= 1, got {self.rank}")
    if self.experts < 1:
      bad("experts", f"must be >= 1, got {self.experts}")
    if self.method == "lora" and self.experts != 1:
      bad("experts", f"LoRA has a single expert, got {self.experts}")
    if self.block is not None and self.method != "mode" and self.block != self.rank:
      bad("block", f"only MoDE splits A into blocks; {self.method} routes all r={self.rank} "
                   f"columns together (leave block unset)")
    if self.block is not None and (self.block < 1 or self.rank % self.block):
      bad("block", f"p={self.block} must divide rank r={self.rank}")
    unknown = [t for t in self.targets if t not in TARGETS]
    if unknown or not self.targets or len(set(self.targets)) != len(self.targets):
      bad("targets", f"{self.targets} must be distinct names from {TARGETS}")
    if self.router not in ROUTERS:
      bad("router", f"{self.router!r} is not one of {ROUTERS}")
    if self.uses_task_router and self.num_tasks < 1:
      bad("num_tasks", f"router={self.router!r} needs num_tasks >= 1")
    if not 0 <= self.top_k <= self.experts:
      bad("top_k", f"must be in [0, experts={self.experts}], got {self.top_k}")
    if self.init not in INITS:
      bad("init", f"{self.init!r} is not one of {INITS}")
    if self.impl not in IMPLS:
      bad("impl", f"{self.impl!r} is not one of {IMPLS}")
    if self.kernel_block_sizes is not None:
      object.__setattr__(self, "kernel_block_sizes", tuple(self.kernel_block_sizes))
      if len(self.kernel_block_sizes) != 3:
        bad("kernel_block_sizes", f"expected (block_m, block_n, block_k), got "
                                  f"{self.kernel_block_sizes}")
    if self.param_dtype not in ("float32", "bfloat16", "float16"):
      bad("param_dtype", f"unsupported {self.param_dtype!r}")

  # ------------------------------------------------------------------ derived
  @property
  def block_size(self) -> int:
    """p: columns of A per routed block (r for every method but MoDE)."""
    if self.method != "mode":
      return self.rank
    return self.block or 1

  @property
  def num_blocks(self) -> int:
    """Router blocks per expert: rank / block_size (MoDE's r / p; 1 for the other methods)."""
    return self.rank // self.block_size

  @property
  def routed(self) -> bool:
    """LoRA has no router; every other method does (even with m = 1, as the formulas count)."""
    return self.method != "lora"

  @property
  def uses_token_router(self) -> bool:
    """Whether a router reads each token (router "token" or "token+task")."""
    return self.routed and self.router in ("token", "token+task")

  @property
  def uses_task_router(self) -> bool:
    """Whether a router reads the row's task id (router "task" or "token+task")."""
    return self.routed and self.router in ("task", "token+task")

  @property
  def shared_down(self) -> bool:
    """Whether experts share one down-projection A (all but MoLoRA)."""
    return self.method != "molora"

  def projection_module(self, out_shape: Sequence[int], in_axes: Sequence[str],
                        out_axes: Sequence[str], dtype: Any, name: str) -> nn.Module:
    """The adapted projection x W0 + term (`model.injection.ProjectionAdapter`)."""
    return module.Adapter(self, tuple(out_shape), tuple(in_axes), tuple(out_axes), dtype=dtype,
                          name=name)

  def replace(self, **kw) -> "AdapterConfig":
    """A copy with the given fields changed."""
    return dataclasses.replace(self, **kw)

  def to_dict(self) -> dict:
    """The fields as a JSON-able dict (targets as a list); `from_dict` reads it back."""
    d = dataclasses.asdict(self)
    d["targets"] = list(self.targets)
    return d

  @classmethod
  def from_dict(cls, d: dict, where: str = "adapter config") -> "AdapterConfig":
    """The config of a `to_dict` dict; an unknown key is a ValueError naming `where`."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      raise ValueError(f"{where}: unknown AdapterConfig keys {unknown}")
    return cls(**d)

  def describe(self) -> str:
    """A short label as the paper writes it, e.g. "MoDE 6x4x1", "LoRA 8"."""
    name = {"lora": "LoRA", "molora": "MoLoRA", "molora_sd": "MoLoRA-SD", "mode": "MoDE"}[
        self.method]
    if self.method == "lora":
      shape = f"{self.rank}"
    elif self.method == "mode":
      shape = f"{self.experts}x{self.rank}x{self.block_size}"
    else:
      shape = f"{self.experts}x{self.rank}"
    return f"{name} {shape}"
