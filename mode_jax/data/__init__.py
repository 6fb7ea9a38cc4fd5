"""SeqIO data: vocabularies (tasks, mixtures and the feature converter arrive with the data issue).

Imports seqio / TensorFlow; the model packages never import this one.
"""

from mode_jax.data import vocab

__all__ = ["vocab"]
