"""`TaskPrefixLMFeatureConverter`: decoder-only (prefix-LM) features that carry task ids.

Per example, seq = [bos] + inputs + targets (targets end in EOS); the model reads seq[:-1] and
predicts seq[1:] (`decoder_input_tokens` / `decoder_target_tokens`), so the shift happens
inside each example and packing can never make a token predict the next example's first token.
`decoder_loss_weights` is 1 on target tokens (or on every token with loss_on_targets_only=False)
and 0 on padding; `decoder_task_ids` repeats the example's `task_id` on each of its tokens, so a
packed row that mixes tasks routes every token by its own task. With pack=True, examples are
packed by `seqio.utils.trim_and_pack_dataset` and `decoder_segment_ids` (1, 2, ...; 0 = padding)
and `decoder_positions` (restarting at 0 per example) come with them.

Model features map to `Transformer.apply(decoder_input_tokens, segment_ids=...,
positions=..., task_ids=decoder_task_ids)`; the loss uses decoder_target_tokens and the weights.
"""

from __future__ import annotations

from typing import Mapping, Optional

import seqio
import tensorflow as tf
from seqio import utils

FeatureSpec = seqio.FeatureConverter.FeatureSpec
_SEQ = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
        "decoder_task_ids")


class TaskPrefixLMFeatureConverter(seqio.FeatureConverter):
  """Prefix-LM converter with per-token task ids; see the module docstring."""

  TASK_FEATURES = {"inputs": FeatureSpec(dtype=tf.int32),
                   "targets": FeatureSpec(dtype=tf.int32)}
  MODEL_FEATURES = {k: FeatureSpec(dtype=tf.int32) for k in _SEQ}
  PACKING_FEATURE_DTYPES = {"decoder_segment_ids": tf.int32, "decoder_positions": tf.int32}

  def __init__(self, pack: bool = True, loss_on_targets_only: bool = True,
               bos_id: Optional[int] = None, use_custom_packing_ops: bool = False):
    self._loss_on_targets_only = loss_on_targets_only
    self._bos = bos_id
    super().__init__(pack=pack, use_custom_packing_ops=use_custom_packing_ops)

  def _to_sequence(self, ex):
    inputs, targets = ex["inputs"], ex["targets"]
    if self._bos is not None:
      inputs = tf.concat([tf.constant([self._bos], tf.int32), inputs], 0)
    seq = tf.concat([inputs, targets], 0)
    in_w = tf.zeros_like(inputs) if self._loss_on_targets_only else tf.ones_like(inputs)
    weights = tf.concat([in_w, tf.ones_like(targets)], 0)
    task_id = tf.cast(ex.get("task_id", tf.constant(0, tf.int32)), tf.int32)
    n = tf.shape(seq)[0] - 1
    return {"decoder_input_tokens": seq[:-1], "decoder_target_tokens": seq[1:],
            "decoder_loss_weights": weights[1:], "decoder_task_ids": tf.fill([n], task_id)}

  def _convert_features(self, ds: tf.data.Dataset,
                        task_feature_lengths: Mapping[str, int]) -> tf.data.Dataset:
    lengths = self.get_model_feature_lengths(task_feature_lengths)
    ds = ds.map(self._to_sequence, num_parallel_calls=tf.data.AUTOTUNE)
    seq_lengths = {k: lengths[k] for k in _SEQ}
    if not self.pack:
      return utils.trim_and_pad_dataset(ds, seq_lengths)
    # seqio's packer treats 0 as padding and cuts every feature at its count of non-zeros, so
    # zeros inside a feature (loss weights of prompt tokens, task id 0, token id 0 which is a
    # real token in Llama 3 / Qwen2 vocabularies) would be lost: shift every value by one.
    ds = ds.map(lambda ex: {k: v + 1 for k, v in ex.items()},
                num_parallel_calls=tf.data.AUTOTUNE)
    ds = utils.trim_and_pack_dataset(ds, seq_lengths, self._use_custom_packing_ops)

    def unshift(ex):
      seg = ex["decoder_target_tokens_segment_ids"]
      out = {k: tf.where(seg > 0, ex[k] - 1, 0) for k in _SEQ}
      out["decoder_segment_ids"] = seg
      out["decoder_positions"] = ex["decoder_target_tokens_positions"]
      return out
    return ds.map(unshift, num_parallel_calls=tf.data.AUTOTUNE)

  def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]) -> dict:
    """Every decoder feature is inputs + targets long (packed rows add segment ids / positions)."""
    n = task_feature_lengths["inputs"] + task_feature_lengths["targets"]
    out = {k: n for k in _SEQ}
    if self.pack:
      out.update(decoder_segment_ids=n, decoder_positions=n)
    return out
