"""RecLLM on any served LLM without fine-tuning: the five components few-shot prompted
(`crs_jax.few_shot`) over an OpenAI-compatible server, the same session sets and metrics as
the trained job (`configs/crs_synthetic.py`), on its embedded catalogue.

    python -m mode_jax.serve.server --model=gemma3_270m --port=8000 &      # or any server
    python -m crs_jax.main --config=configs/crs_served.py --workdir=runs/crs_served \
        [--config.served.url=http://host:8000 --config.served.model=NAME --config.served.chat=True]

`served.chat=True` sends each prompt as one user message to /v1/chat/completions (an
instruction-tuned model); False uses /v1/completions (any model). Variant "cpu": 40 sessions of
at most 6 turns, sized for a 270M model served on this 2-core CPU.
"""

import ml_collections

from mode_jax.config_files import sibling

crs = sibling(__file__, "crs_synthetic")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  if arg not in ("", "cpu"):
    raise ValueError(f"configs/crs_served.py: unknown variant {arg!r} (use '' or 'cpu')")
  c = crs.get_config()
  c.job = "crs_jax.job:crs_served"
  c.served = ml_collections.ConfigDict(dict(url="http://127.0.0.1:8000", model="gemma3_270m",
                                            chat=False, shot_sessions=30,
                                            timeout=600.0))
  c.sessions.baselines = ("random", "rule", "teacher")
  if arg == "cpu":
    c.sessions.num_sessions = 40
    c.sessions.max_turns = 6
  return c
