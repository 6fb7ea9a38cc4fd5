"""TensorFlow Datasets builders for the file-based sources (no downloads: `manual_dir` only).

    from mode_jax.data import tfds_builders
    tfds_builders.prepare_sni(sni_clone_dir, data_dir)          # writes TFRecord shards once
    tasks.make_sni_tasks(sni_clone_dir, vocab, tfds_data_dir=data_dir)   # seqio.TfdsDataSource
    tfds_builders.prepare_gsm8k(gsm8k_dir, data_dir)            # train.jsonl / test.jsonl

The rows are exactly those of the direct JSON path (`sni.sni_rows`, `math_data.math_rows`), so
both paths give the same examples. Importing this module registers the builders with TFDS.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from mode_jax.data import math_data, sni

_ROW = {"inputs": tfds.features.Text(), "targets": tfds.features.Text(),
        "references": tfds.features.Text()}


@dataclasses.dataclass
class SniConfig(tfds.core.BuilderConfig):
  protocol: str = "within_task"
  num_pos: int = 2


def sni_config_name(protocol: str, num_pos: int) -> str:
  """The TFDS builder config name of an SNI protocol and positive-example count."""
  return f"{protocol}_pos{num_pos}"


def sni_tfds_name(protocol: str, num_pos: int) -> str:
  """The TFDS name ("sni_tasks/<config>:1.0.0") of an SNI protocol and count."""
  return f"sni_tasks/{sni_config_name(protocol, num_pos)}:1.0.0"


class SniTasks(tfds.core.GeneratorBasedBuilder):
  """Super-NaturalInstructions prompt rows, one TFDS dataset for all tasks ("task" field)."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = ("Point manual_dir at a clone of allenai/natural-instructions "
                                  "(with tasks/ and splits/default/).")
  BUILDER_CONFIGS = [SniConfig(name=sni_config_name(p, k), protocol=p, num_pos=k)
                     for p in ("within_task", "unseen_tasks") for k in (0, 2)]

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(
        dict(_ROW, task=tfds.features.Text(), id=tfds.features.Text())))

  def _split_generators(self, dl_manager):
    c = self.builder_config
    by_task = sni.sni_rows(os.fspath(dl_manager.manual_dir), c.protocol, None, c.num_pos)
    return {split: self._generate_examples(by_task, split) for split in ("train", "validation")}

  def _generate_examples(self, by_task, split):
    for name, rows in sorted(by_task.items()):
      for i, row in enumerate(rows[split]):
        yield f"{name}/{i}", dict(row, task=name, id=f"{name}/{i}")


class Gsm8kSteps(tfds.core.GeneratorBasedBuilder):
  """GSM8K as question -> steps -> "The answer is X." rows (train.jsonl / test.jsonl)."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Point manual_dir at a directory with train.jsonl / test.jsonl."

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(
        dict(_ROW, id=tfds.features.Text())))

  def _split_generators(self, dl_manager):
    d = os.fspath(dl_manager.manual_dir)
    return {s: self._generate_examples(os.path.join(d, f"{s}.jsonl")) for s in ("train", "test")
            if os.path.exists(os.path.join(d, f"{s}.jsonl"))}

  def _generate_examples(self, path):
    recs = math_data.read_gsm8k(path)
    for rec, row in zip(recs, math_data.math_rows(recs)):
      yield rec["id"], dict(row, id=rec["id"])


def _prepare(builder_cls, manual_dir: str, data_dir: str, **kw):
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(f"manual_dir {manual_dir} does not exist")
  builder = builder_cls(data_dir=data_dir, **kw)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, try_download_gcs=False))
  return builder


def prepare_sni(sni_dir: str, data_dir: str, protocol: str = "within_task", num_pos: int = 2):
  """Builds the SNI TFDS dataset from `sni_dir` into `data_dir` (once); returns the builder."""
  return _prepare(SniTasks, sni_dir, data_dir, config=sni_config_name(protocol, num_pos))


def prepare_gsm8k(gsm8k_dir: str, data_dir: str):
  """Builds the GSM8K TFDS dataset from `gsm8k_dir` into `data_dir` (once); returns the builder."""
  return _prepare(Gsm8kSteps, gsm8k_dir, data_dir)
