"""Training: sharded state, optax optimizers, orbax checkpoints, metrics, evaluation, jobs."""
