"""Run in a fresh process (8 host devices): the model with the fused Pallas adapter (interpret
mode) under an 8-device FSDP mesh equals one device (loss and adapter gradients), and the lowered
program holds the kernel inside a shard_map (manual) region. Prints one JSON line."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
  import jax
  import jax.numpy as jnp
  import numpy as np

  from mode_jax.adapters import AdapterConfig, split
  from mode_jax.model import ModelConfig
  from mode_jax.train import loop, partitioning
  cfg = ModelConfig(vocab_size=64, embed_dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                    head_dim=8, mlp_dim=64, scan_layers=True)
  acfg = AdapterConfig("mode", experts=2, rank=4, targets=("q", "o", "down"), impl="pallas",
                       kernel_interpret=True, kernel_block_sizes=(16, 16, 16))
  tcfg = dict(steps=1, batch_size=8, seq_len=16, seed=0, lr=1e-2, warmup_steps=0,
              decay="constant", end_lr_frac=0.0, optimizer="adamw", weight_decay=0.0,
              grad_clip=0.0, grad_accum=1, loss_chunk=0, loss_positions=0,
              crash_at_step=-1)

  class C(dict):
    __getattr__ = dict.__getitem__
  rng = np.random.default_rng(0)
  toks = rng.integers(1, 64, (8, 17)).astype(np.int32)
  host = {"decoder_input_tokens": toks[:, :-1], "decoder_target_tokens": toks[:, 1:],
          "decoder_loss_weights": np.ones((8, 16), np.float32)}
  out = {}
  for name, shape in (("one", (1, 1, 1)), ("fsdp8", (1, 8, 1)), ("data2_tensor4", (2, 1, 4))):
    n = int(np.prod(shape))
    st = loop.setup(cfg, acfg, C(tcfg), mesh_cfg=dict(shape=shape), devices=jax.devices()[:n])
    frozen, trainable = split(jax.jit(st.init_all)(st.key))
    trainable = jax.tree.map(lambda x: x + 0.05, trainable)   # B != 0
    frozen = jax.device_put(frozen, st.frozen_sh)
    trainable = jax.device_put(trainable, st.train_sh)
    state = jax.jit(st.make_state, out_shardings=st.state_sh)(trainable)
    batch = {k: jax.device_put(v, st.batch_sharding) for k, v in host.items()}
    with partitioning.activate(st.mesh, st.rules):
      text = st.step_fn.lower(state, frozen, batch).as_text()
      new, m = st.step_fn(state, frozen, batch)
    leaves = [np.asarray(x) for x in jax.tree.leaves(new.params)]
    ref = out.get("one", {}).get("_leaves", leaves)
    out[name] = {"loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
                 "max_param_diff": max(float(np.abs(a - b).max()) for a, b in zip(leaves, ref)),
                 "manual_region": "manual" in text.lower(), "_leaves": leaves}
  for v in out.values():
    v.pop("_leaves")
  print(json.dumps(out))


if __name__ == "__main__":
  main()
