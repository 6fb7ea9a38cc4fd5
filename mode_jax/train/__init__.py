"""Training: the run API (`run`: a RunSpec built once from the config, `run(spec)` -> a frozen
RunResult), its SeqIO data (`run_data`) and base model (`bases`); sharded state, optax
optimizers, orbax checkpoints, the loop (`loop.train` -> TrainResult), evaluation, the built-in
jobs (`jobs`), fit checks and preemption."""
