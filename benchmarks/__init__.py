"""Benchmarks: each prints its figures, and where it makes sense the same figure for the tool a
user would use instead (HF transformers, PEFT, XLA), measured in the same run.

Run from the repository root (`make bench` runs the CPU ones):

    python -m benchmarks.sampling        # KV-cache sampler vs transformers.generate
    python -m benchmarks.adapters        # fwd+bwd of one block per adapter method
    python -m benchmarks.kernels         # fused Pallas adapter kernel vs XLA (GPU / TPU)
    python -m benchmarks.data_pipeline   # packed seqio stream throughput
    python -m benchmarks.omegaprm        # OmegaPRM vs Math-Shepherd vs the sequential scan
    python -m benchmarks.train_step      # train-step throughput / MFU of a preset

They are not library code: they may import torch / transformers, and no module under
`mode_jax/` or `prm_jax/` imports them.
"""
