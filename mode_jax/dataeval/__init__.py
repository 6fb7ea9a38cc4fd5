"""Quality, diversity and bias measures of generated datasets, shared by the applications
(`prm_jax.dataeval.report` for OmegaPRM labels and task data, `crs_jax.report` for simulated
conversations); each metric is defined in its module's docstring and reported with a 95%
interval.

- `lexical`: distinct-n, n-gram entropy, self-BLEU (each text against all the others).
- `embed`: encoders (mean-pooled `mode_jax` backbone states; all-MiniLM-L6-v2 when installed).
- `semantic`: Vendi score, mean pairwise cosine distance.
- `distribution`: MAUVE (several k-means seeds), Frechet distance, discriminator AUC.
- `overlap`: exact / near-duplicates, leakage of test items.
- `coverage`: coverage per field, lengths; `stats`: bootstrap / half-sampling intervals, Gini,
  AUROC.
"""
