"""OmegaPRM process supervision and process reward models (built on `mode_jax`).

- `prm_jax.envs`: the arithmetic env (exact first-error checker) and its simulated policy.
- `prm_jax.policy`: the Policy extension point; in-process JAX sampler, OpenAI-compatible HTTP
  client and server, the tiny SFT policy.
- `prm_jax.omegaprm`: OmegaPRM, Math-Shepherd and the sequential scan; Beam pipeline; bench.
- `prm_jax.collect`: resumable collection (`python -m prm_jax.collect`).
- `prm_jax.graders`, `prm_jax.steps`: correctness functions and step splitters.

PRM heads, training and verification are the next issue. `mode_jax` never imports this package.
"""
