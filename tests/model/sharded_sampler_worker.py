"""Run with 8 host devices: a Sampler whose parameters are sharded over a (data 2, fsdp 2,
tensor 2) mesh by the training rules gives the same greedy tokens and log-probs as the
replicated one-device sampler; prints OK. (A subprocess: the device count is fixed at start.)"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mode_jax.adapters import AdapterConfig  # noqa: E402
from mode_jax.model import ModelConfig, Transformer, sampling  # noqa: E402
from mode_jax.train import partitioning  # noqa: E402

cfg = ModelConfig(vocab_size=96, embed_dim=32, num_layers=3, num_heads=4, num_kv_heads=2,
                  head_dim=8, mlp_dim=64, max_seq_len=128, model_type="gemma3_text",
                  activation="gelu_tanh", norm_plus_one=True, embed_scale=True,
                  tie_embeddings=True, qk_norm=True, post_norms=True, sliding_window=4,
                  rope_local_theta=100.0,
                  layer_types=("sliding_attention", "full_attention", "sliding_attention"))
acfg = AdapterConfig("mode", experts=2, rank=4, block=2, router="task", num_tasks=2,
                     targets=("q", "v", "down"))
params = nn.meta.unbox(Transformer(cfg, acfg).init(jax.random.key(0), jnp.ones((1, 4), jnp.int32),
                                                    task_ids=jnp.zeros((1,), jnp.int32))["params"])
params = jax.tree.map(lambda x: x * 3 + 0.05, params)
rs = np.random.RandomState(0)
prompts = [list(rs.randint(2, 96, n)) for n in (3, 9, 5, 12, 7, 2, 10, 4)]
tids = [i % 2 for i in range(8)]
ref = sampling.Sampler(cfg, params, adapter=acfg, devices=jax.devices()[:1]).generate(
    prompts, max_new_tokens=12, temperature=0.0, task_ids=tids)
mesh = partitioning.make_mesh(("data", "fsdp", "tensor"), (2, 2, 2))
rules = partitioning.rules_from_config(())
s = sampling.Sampler(cfg, params, adapter=acfg, mesh=mesh, rules=rules)
assert s.cfg.embed_lookup == "vocab_parallel"     # the vocabulary is split over the tensor axis
specs = {str(x.sharding.spec) for x in jax.tree.leaves(s.params)}
assert any("tensor" in sp for sp in specs) and any("fsdp" in sp for sp in specs), specs
out = s.generate(prompts, max_new_tokens=12, temperature=0.0, task_ids=tids)
np.testing.assert_array_equal(out.tokens, ref.tokens)
np.testing.assert_allclose(out.logprobs, ref.logprobs, atol=2e-5)
print("OK", sorted(specs)[:3])
