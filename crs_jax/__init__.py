"""RecLLM (Friedman et al. 2023, arXiv 2305.07961): an LLM conversational recommender with a
controllable user simulator, on a catalogue whose users' preferences are known exactly.

- `crs_jax.catalogue`: catalogues with free attributes (a schema each), the seeded synthetic
  one, JSONL I/O; `crs_jax.movielens`: MovieLens-100k read from the `recbole` wheel's files,
  as a catalogue; `crs_jax.movielens_users`: users grounded in its held-out ratings.
- `crs_jax.goals`: hidden goals, exact utility / acceptable items, history and profile text.
- `crs_jax.nlu`: exact reading of attribute mentions (the checker behind the metrics).
- `crs_jax.interfaces`: the `Recommender` / `UserSimulator` extension points and turns.
- `crs_jax.rule_simulator`: the agenda-based rule simulator (bootstrap labels).
- `crs_jax.baselines`: random, popularity, rule-based and oracle recommenders.
- `crs_jax.search`: attribute + BM25 search API over a growing index.
- `crs_jax.session`: the batched, resumable session runner; `crs_jax.metrics`: exact metrics.
- `crs_jax.few_shot`: the LLM components on any served model, few-shot prompted.

Dependency direction: catalogue <- goals, nlu <- interfaces <- rule_simulator, baselines <-
session <- metrics; `mode_jax` never imports this package (tests/test_import_graph.py).
"""
