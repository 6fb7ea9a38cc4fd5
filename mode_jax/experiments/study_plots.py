"""Figures of a comparison study (`experiments.compare`): per-task scores with 95% intervals,
the mean training-loss curve of each method, and per routed method its routing analysis
(per-task expert usage of the most task-specific block and averaged over blocks; the task
specificity of every block)."""

from __future__ import annotations

import os

import numpy as np

from mode_jax.experiments.study_stats import short_task, slug


def plots(workdir: str, out: dict) -> list[str]:
  """Writes the study's figures into `workdir`; returns their file names."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  written = []
  labels, task_names = list(out["summary"]), out["tasks"]
  # SNI names run to 60 characters ("task1346_glue_cola_grammatical_correctness_...")
  short = [(n if len(n) <= 26 else n[:24] + "..") for n in map(short_task, task_names)]
  fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(task_names)), 4.5))
  width = 0.8 / len(labels)
  for i, lab in enumerate(labels):
    ivs = [out["per_task"][lab][t] for t in task_names]
    err = [iv["half_width"] or 0.0 for iv in ivs]
    ax.bar(np.arange(len(task_names)) + i * width, [iv["mean"] for iv in ivs], width,
           yerr=err, capsize=2, label=f"{lab} (n={len(out['summary'][lab]['seeds'])})")
  ax.set_xticks(np.arange(len(task_names)) + 0.4 - width / 2, short, rotation=45, ha="right")
  ax.set_ylabel(f"{out['metric']} (mean ± 95% CI over seeds)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  written.append(os.path.join(workdir, "per_task_scores.png"))
  fig.savefig(written[-1], dpi=110)
  plt.close(fig)
  if out.get("train_loss"):
    fig, ax = plt.subplots(figsize=(6, 4))
    for lab, r in out["train_loss"].items():
      ax.plot(r["steps"], r["mean_curve"], marker="o", ms=3,
              label=f"{lab} (n={len(r['seeds'])})")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (logged, mean over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(os.path.join(workdir, "train_loss.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
  for lab, r in out["routing"].items():
    usage = np.asarray(r["usage"])                  # [tasks, blocks, experts]
    k = r["most_specific_block"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.35 * len(task_names) + 2.5),
                             gridspec_kw={"width_ratios": [1, 1, 2]})
    for ax, data, title in ((axes[0], usage.mean(1), "mean over blocks"),
                            (axes[1], usage[:, k], f"block {k} (most task-specific)")):
      im = ax.imshow(data, aspect="auto", cmap="viridis")
      ax.set_yticks(range(len(short)), short, fontsize=7)
      ax.set_xlabel("expert")
      ax.set_title(title, fontsize=9)
      fig.colorbar(im, ax=ax)
    axes[2].plot(r["block_specificity"], lw=0.8)
    axes[2].set_xlabel("routed block (layer-major: layer x projection x rank block)")
    axes[2].set_ylabel("task specificity (mean JS divergence, nats)")
    axes[2].set_title(f"{lab}: routing weight per task", fontsize=9)
    fig.tight_layout()
    written.append(os.path.join(workdir, f"routing_{slug(lab)}.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
  return written
