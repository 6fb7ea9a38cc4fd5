"""OmegaPRM collection on the arithmetic env (the embedded default for process supervision).

    python -m prm_jax.collect --config=configs/omegaprm_arith.py --workdir=runs/omegaprm
    # Math-Shepherd / the sequential scan on the same questions:
    python -m prm_jax.collect --config=configs/omegaprm_arith.py --workdir=runs/shepherd \
        --config.method=math_shepherd
    # the tiny trained policy (python -m prm_jax.policy.sft, runs/policy) instead:
    python -m prm_jax.collect --config=configs/omegaprm_arith.py:jax --workdir=runs/omegaprm_jax
    # a served model (vLLM / SGLang / llama.cpp / python -m mode_jax.serve.server) on GSM8K:
    python -m prm_jax.collect --config=configs/omegaprm_arith.py --workdir=runs/gsm8k \
        --config.questions.source=jsonl --config.questions.path=../shared/data/gsm8k/train.jsonl \
        --config.questions.grader=gsm8k --config.policy.kind=http \
        --config.policy.url=http://127.0.0.1:8000 --config.policy.model=policy

    # the Gemma 3 270M GSM8K policy (configs/policy_gsm8k.py, runs/policy_gsm8k) on GSM8K train:
    python -m prm_jax.collect --config=configs/omegaprm_arith.py:gsm8k_cpu --workdir=runs/omegaprm_gsm8k

Search settings are the paper's (alpha .5, beta .9, L 500, c_puct .125, k 8, 100 searches,
32 root rollouts with the 0/32 and 32/32 filter, the MC > 0 decision). A more robust binary
search when the policy can recover from a wrong step (benchmarks.omegaprm, docs/benchmarks.md):
    --config.search.decision=lrt --config.search.recover_ratio=0.3
"""

import ml_collections

from prm_jax.policy.sft import POLICY_ARITH, TEMPLATE


def policy_block(kind="simulated"):
  return ml_collections.ConfigDict(dict(
      kind=kind,                       # simulated | jax | http
      p_error=0.05, p_recover=0.05,    # simulated
      checkpoint="", adapter_dir="", tokenizer="", max_batch=256,   # jax: any serve.load name
      chat=False,                      # http: /v1/chat/completions instead of /v1/completions
      url="", model="policy", api_key_env="OPENAI_API_KEY", max_concurrency=8,
      timeout=120.0, max_retries=-1, retry_window=600.0,  # http: retry for 10 min (-1: no count cap)
      template="Question: {question}\nAnswer:\n", temperature=1.0, top_p=1.0, top_k=0,
      max_new_tokens=256, stop=()))


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg "" : the simulated policy on 8-16 step problems; arg "jax": the tiny trained policy
  (runs/policy/policy_model from configs/policy_arith.py) on the problems it was trained on."""
  c = ml_collections.ConfigDict()
  c.method = "omegaprm"                # omegaprm | math_shepherd | sequential
  c.seed = 0
  c.concurrency = 8                    # questions searched together (requests batched)
  c.log_every = 1
  c.crash_after_records = -1           # test hook: SIGKILL after the Nth question's records
  c.questions = ml_collections.ConfigDict(dict(
      source="arithmetic", num=32, seed=0, grader="arithmetic",
      arith=dict(min_ops=7, max_ops=15, max_start=20, max_operand=20, max_factor=5,
                 max_value=1000, allow_negative=False, ops=("+", "-", "*", "/")),
      path="", question_field="question", answer_field="answer", id_field="id",
      task_field="task"))
  c.policy = policy_block()
  c.search = ml_collections.ConfigDict(dict(
      alpha=0.5, beta=0.9, length_scale=500.0, c_puct=0.125, k=8, search_limit=100,
      root_rollouts=32, filter_root=True, record_root_rollouts=False,
      # binary-search decision (prm_jax/omegaprm/decision.py): mc>0 (paper) | c_of_k | lrt
      decision="mc>0", min_correct=2, recover_ratio=0.1, boundary_rollouts=0))
  c.shepherd = ml_collections.ConfigDict(dict(
      k=8, root_rollouts=32, filter_root=True, max_solutions=32, rollout_budget=0,
      annotate="incorrect", record_root_rollouts=False,
      decision="mc>0", min_correct=2, recover_ratio=0.1))
  c.splitter = ml_collections.ConfigDict(dict(kind="delimiter", delimiter="\n", span=0))
  if arg == "jax":
    c.policy.kind = "jax"
    c.policy.checkpoint = "runs/policy/policy_model"
    c.policy.max_new_tokens = 80
    c.questions.seed = 7               # not the policy's training or evaluation problems
    c.questions.arith = dict(POLICY_ARITH)
    c.concurrency = 16
  elif arg in ("gsm8k", "gsm8k_cpu"):
    # the Gemma 3 270M GSM8K policy (configs/policy_gsm8k.py) on GSM8K train questions, graded
    # by the project's GSM8K grader; "gsm8k": 300 questions at the paper's search budget (an
    # accelerator job: a GSM8K rollout is ~150 Gemma tokens, ~93 tokens/s batched on 2 CPU
    # cores); "gsm8k_cpu": 32 questions, 16 root rollouts, k 4, 6 searches (about 1,000
    # rollouts)
    c.policy.kind = "jax"
    c.policy.checkpoint = "runs/policy_gsm8k/policy_model"
    c.policy.template = TEMPLATE
    c.policy.max_new_tokens = 320
    c.policy.max_batch = 64
    c.questions.update(dict(source="jsonl", path="../shared/data/gsm8k/train.jsonl",
                            grader="gsm8k", num=300, question_field="question",
                            answer_field="answer"))
    c.concurrency = 8
    if arg == "gsm8k_cpu":
      c.questions.num = 32
      c.search.update(dict(root_rollouts=16, k=4, search_limit=6))
      c.shepherd.update(dict(root_rollouts=16, k=4))
  elif arg:
    raise ValueError(f"configs/omegaprm_arith.py: unknown variant {arg!r} (expected '', 'jax', "
                     f"'gsm8k' or 'gsm8k_cpu')")
  return c
