"""`PRMFeatureConverter`: tokens with per-token step labels and sibling groups, packed.

Task features targets / labels / groups / weights / tasks (equal lengths) -> model features
decoder_input_tokens, prm_labels, prm_groups, prm_weights, decoder_task_ids (+ decoder_segment_ids /
decoder_positions when packed). No shift: the PRM reads the hidden state at each step's last token, not a next-token
prediction. Values go through seqio's packer shifted by one (it treats 0 as padding), as in
`mode_jax.data.features`.
"""

from __future__ import annotations

from typing import Mapping

import seqio
import tensorflow as tf
from seqio import utils

FeatureSpec = seqio.FeatureConverter.FeatureSpec
_MAP = {"targets": "decoder_input_tokens", "labels": "prm_labels", "groups": "prm_groups",
        "weights": "prm_weights", "tasks": "decoder_task_ids"}


class PRMFeatureConverter(seqio.FeatureConverter):
  TASK_FEATURES = {k: FeatureSpec(dtype=tf.int32) for k in _MAP}
  MODEL_FEATURES = {v: FeatureSpec(dtype=tf.int32) for v in _MAP.values()}
  PACKING_FEATURE_DTYPES = {"decoder_segment_ids": tf.int32, "decoder_positions": tf.int32}

  def _convert_features(self, ds: tf.data.Dataset,
                        task_feature_lengths: Mapping[str, int]) -> tf.data.Dataset:
    n = task_feature_lengths["targets"]
    ds = ds.map(lambda ex: {v: ex[k] for k, v in _MAP.items()},
                num_parallel_calls=tf.data.AUTOTUNE)
    lengths = {v: n for v in _MAP.values()}
    if not self.pack:
      return utils.trim_and_pad_dataset(ds, lengths)
    ds = ds.map(lambda ex: {k: v + 1 for k, v in ex.items()}, num_parallel_calls=tf.data.AUTOTUNE)
    ds = utils.trim_and_pack_dataset(ds, lengths, self._use_custom_packing_ops)

    def unshift(ex):
      seg = ex["decoder_input_tokens_segment_ids"]
      out = {k: tf.where(seg > 0, ex[k] - 1, 0) for k in _MAP.values()}
      out["decoder_segment_ids"] = seg
      out["decoder_positions"] = ex["decoder_input_tokens_positions"]
      return out
    return ds.map(unshift, num_parallel_calls=tf.data.AUTOTUNE)

  def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]) -> dict:
    """Every model feature is `targets` long (packed rows add segment ids / positions)."""
    n = task_feature_lengths["targets"]
    out = {v: n for v in _MAP.values()}
    if self.pack:
      out.update(decoder_segment_ids=n, decoder_positions=n)
    return out
