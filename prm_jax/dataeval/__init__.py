"""Quality, diversity and bias of generated datasets (OmegaPRM labels, synthetic tasks, policy
samples), each metric defined in its module's docstring and reported with a 95% interval.

- `lexical`: distinct-n, n-gram entropy, self-BLEU (each text against all the others).
- `embed`: encoders (mean-pooled `mode_jax` backbone states; all-MiniLM-L6-v2 when installed).
- `semantic`: Vendi score, mean pairwise cosine distance.
- `distribution`: MAUVE (several k-means seeds), Frechet distance, discriminator AUC.
- `labels`: process-supervision label quality (MC distribution, balance per step position,
  agreement with exact labels, estimated error rates, conflicts).
- `overlap`: exact / near-duplicates, leakage of test items.
- `coverage`: coverage per field, lengths; `stats`: bootstrap / half-sampling intervals, Gini.
- `report` (CLI): report.md + report.json + plots; `sources` (CLI): JSONL exports of the
  project's data sets.
"""
