"""The dataset quality report of process-supervision data (OmegaPRM labels, synthetic tasks,
policy samples). The generic measures (lexical, embed, semantic, distribution, overlap,
coverage, stats) live in `mode_jax.dataeval`, shared with `crs_jax`; here:

- `labels`: process-supervision label quality (MC distribution, balance per step position,
  agreement with exact labels, estimated error rates, conflicts).
- `report` (CLI): report.md + report.json + plots; `render`: its markdown and figures;
  `sources` (CLI): JSONL exports of the project's data sets.
"""
