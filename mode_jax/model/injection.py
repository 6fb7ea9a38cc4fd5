"""The model's extension point for adapters: what `Transformer(cfg, adapter=...)` asks of it.

The model does not know any adapter method. Every projection named in `adapter.targets` (q, k,
v, o, gate, up, down) asks the adapter for a Linen sub-module named "adapter" and lets it
compute the whole projection from the frozen kernel:

    y = adapter.projection_module(out_shape, in_axes, out_axes, dtype, name="adapter")(
            x, kernel, task_ids)               # = x W0 + the adapter's term, in `dtype`

One contract for every implementation: the module always returns x W0 plus its term (a dense
XLA path adds the two, a fused kernel computes them in one pass); the projection adds its bias
afterwards. `mode_jax.adapters.AdapterConfig` implements this protocol; the dependency points
from `mode_jax.adapters` to `mode_jax.model`, never back.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence

import flax.linen as nn


class ProjectionAdapter(Protocol):
  """Hashable settings (a static Linen attribute) that build the adapter of one projection."""

  targets: Sequence[str]

  def projection_module(self, out_shape: Sequence[int], in_axes: Sequence[str],
                        out_axes: Sequence[str], dtype: Any, name: str) -> nn.Module:
    """A module called as `(x [..., *in], kernel [*in, *out], task_ids [B] | [B, T] | None)`
    returning x W0 + the adapter term [..., *out] in `dtype`."""
    ...


def adapter_for(adapter: Optional[ProjectionAdapter], name: str) -> Optional[ProjectionAdapter]:
  """`adapter` if it wraps the projection called `name`, else None."""
  return adapter if adapter is not None and name in adapter.targets else None
