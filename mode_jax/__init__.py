"""MoDE (Mixture of Dyadic Experts) in JAX/Flax: backbone, adapters, kernels, data, trainer.

`mode_jax.model` and `mode_jax.adapters` import only jax/flax/numpy; `mode_jax.data` and the
trainer need seqio / TensorFlow / ml_collections and are imported explicitly.
"""

from mode_jax import model

__all__ = ["model"]
