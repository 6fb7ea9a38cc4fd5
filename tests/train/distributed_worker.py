"""One process of a data-parallel training run on CPU, for the multi-host test:

    python tests/train/distributed_worker.py PROCESS_ID NUM_PROCESSES PORT WORKDIR OUT.npz

NUM_PROCESSES > 1: `jax.distributed.initialize` at 127.0.0.1:PORT (gloo CPU collectives), one
CPU device per process; 1: a single process (the parent sets the device count). Every process
feeds its rows of the same global batches (`make_array_from_process_local_data` in the loop),
so the runs must agree. Process 0 writes the logged losses and the final adapter params.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

STEPS, BATCH, LEN = 4, 8, 32


def global_batch(step: int, vocab: int):
  import numpy as np
  rng = np.random.default_rng(1000 + step)
  toks = rng.integers(1, vocab, (BATCH, LEN + 1)).astype(np.int32)
  return {"decoder_input_tokens": toks[:, :-1], "decoder_target_tokens": toks[:, 1:],
          "decoder_loss_weights": np.ones((BATCH, LEN), np.float32),
          "decoder_segment_ids": np.ones((BATCH, LEN), np.int32),
          "decoder_positions": np.broadcast_to(np.arange(LEN, dtype=np.int32), (BATCH, LEN))}


def main():
  pid, nproc, port, workdir, out = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                    sys.argv[4], sys.argv[5])
  import jax
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if nproc > 1:
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)
  import numpy as np

  from mode_jax.adapters import AdapterConfig
  from mode_jax.config_files import load_module
  from mode_jax.model import presets
  from mode_jax.train import loop

  cfg = presets.get("tiny", embed_dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                    head_dim=8, mlp_dim=64)
  acfg = AdapterConfig("mode", experts=2, rank=4, targets=("q", "v", "down"))
  root = os.path.join(os.path.dirname(__file__), "..", "..")
  tcfg = load_module(os.path.join(root, "configs", "blocks.py")).train_block(
      steps=STEPS, lr=1e-2, batch=BATCH, warmup=1)
  tcfg.log_every, tcfg.ckpt_every, tcfg.async_ckpt, tcfg.seq_len = 1, 1000, False, LEN
  per = BATCH // jax.process_count()

  def batches(start):
    for step in range(start, STEPS):
      g = global_batch(step % 2, cfg.vocab_size)      # two batches, seen twice
      yield {k: v[pid * per:(pid + 1) * per] for k, v in g.items()}

  res = loop.train(cfg, acfg, tcfg, batches=batches, workdir=workdir,
                   mesh_cfg=dict(axes=("data", "fsdp", "tensor"), shape=(1, -1, 1)),   # FSDP over hosts
                   log=lambda s: print(f"[{pid}] {s}", flush=True))
  from mode_jax.train import evaluate
  params = evaluate.host(res.state.params)   # arrays span both processes: a collective
  if pid == 0:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      losses = [json.loads(line)["loss"] for line in f]
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    np.savez(out, __loss__=np.asarray(losses), __devices__=np.asarray(jax.device_count()),
             **{jax.tree_util.keystr(p): np.asarray(v) for p, v in flat})


if __name__ == "__main__":
  main()
