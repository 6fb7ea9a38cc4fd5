"""The sampling demo (`sample_demo` job; `make run` runs configs/mode_gemma3.py, not this).

    python -m mode_jax.main --config=configs/default.py --workdir=runs/demo
    python -m mode_jax.main --config=configs/default.py --workdir=runs/x \
        --config.model.name=tiny --config.sampling.temperature=0.0

Builds the `tiny` preset with random weights, writes it as an HF checkpoint, loads it back (the
round trip must be exact), and samples from it with the byte vocabulary. Point
`checkpoint.hf_path` (and `vocab.kind/path`) at a local HF directory to sample from a real model.
`get_config("small")` shortens generation for quick local runs.
"""

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  small = arg == "small"
  c = ml_collections.ConfigDict()
  c.job = "sample_demo"
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(name="tiny", dtype="float32", param_dtype="float32",
                                           scan_layers=False, remat=False))
  c.checkpoint = ml_collections.ConfigDict(dict(hf_path=""))
  c.vocab = ml_collections.ConfigDict(dict(kind="bytes", path=""))
  c.sampling = ml_collections.ConfigDict(dict(
      prompts=("Reverse the string: abc\nAnswer:", "Add 12 and 30.\nAnswer:", "Q:"),
      max_new_tokens=16 if small else 48, temperature=0.8, top_k=0, top_p=0.95,
      stop_strings=(), num_samples=2))
  return c
