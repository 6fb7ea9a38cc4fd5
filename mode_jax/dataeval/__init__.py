"""The one dataset-quality package: quality, diversity and bias measures of generated
datasets, `compare.compare_sets` (a generated set against a reference, every number with a 95%
interval) with application sections (`prm_jax.label_quality.section` for process-supervision
labels, `crs_jax.report.section` for simulated conversations), `render` (report.md / json /
plots), and the CLIs `report` and `sources`. Each metric is defined in its module's docstring.

- `lexical`: distinct-n, n-gram entropy, self-BLEU (each text against all the others).
- `embed`: encoders (mean-pooled `mode_jax` backbone states; all-MiniLM-L6-v2 when installed).
- `semantic`: Vendi score, mean pairwise cosine distance.
- `distribution`: MAUVE (several k-means seeds), Frechet distance, discriminator AUC.
- `overlap`: exact / near-duplicates, leakage of test items.
- `coverage`: coverage per field, lengths; `stats`: bootstrap / half-sampling intervals, Gini,
  AUROC.
"""
