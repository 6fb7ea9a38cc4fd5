"""SeqIO data: vocabularies, the synthetic suite, SNI, GSM8K / MATH, tasks and mixtures built by
functions (`tasks.make_*`), the task-id prefix-LM feature converter, metrics.

Imports seqio / TensorFlow; the model packages never import this one. Nothing is registered at
import time.
"""

from mode_jax.data import features, math_data, metrics, sni, synthetic, tasks, vocab
from mode_jax.data.features import TaskPrefixLMFeatureConverter
from mode_jax.data.tasks import TaskIdTable

__all__ = ["vocab", "synthetic", "sni", "math_data", "tasks", "features", "metrics",
           "TaskPrefixLMFeatureConverter", "TaskIdTable"]
