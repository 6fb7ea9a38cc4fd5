"""OmegaPRM process supervision and process reward models (built on `mode_jax`).

- `prm_jax.envs`: the arithmetic env (exact first-error checker).
- `prm_jax.policy`: the Policy extension point; the simulated policy of the arithmetic env,
  in-process JAX sampler, OpenAI-compatible HTTP client and server, the tiny SFT policy.
- `prm_jax.omegaprm`: OmegaPRM, Math-Shepherd and the sequential scan.
- `prm_jax.collect` / `prm_jax.collect_beam`: resumable collection / the same as a Beam pipeline.
- `prm_jax.graders`, `prm_jax.steps`: correctness functions and step splitters.
- `prm_jax.prm`: PRM heads, objectives, metrics, training; `prm_jax.evaluate` (ProcessBench CLI),
  `prm_jax.verify` (PRM-weighted selection), `prm_jax.pipeline` (end to end).
- `prm_jax.label_quality` / `label_report`: the PRM-label section of the dataset report
  (`mode_jax.dataeval`).

Dependency direction: envs <- graders, policy <- omegaprm <- collect <- collect_beam, pipeline;
`mode_jax` never imports this package (tests/test_import_graph.py checks both).
"""
