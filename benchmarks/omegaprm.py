"""OmegaPRM vs Math-Shepherd vs the sequential scan on the arithmetic env with the simulated
policy, where the first error of every solution and the closed-form label noise are known:

    python -m benchmarks.omegaprm [--questions=100] [--ops=15] [--searches=8] [--k=8] \
        [--variants=omegaprm,omegaprm 2of8,...]

Per (p_error, p_recover) setting and method: rollouts, policy calls (prefix requests) and
generated tokens per localised solution (root filter excluded; it is the same 32 rollouts for
every method), first-error localisation accuracy against the exact checker (over all searched
solutions, with a 95% interval from a bootstrap over questions, and over those sampled from the question alone: OmegaPRM also searches rollouts of
deeper states, which may already be past the first error when their MC > 0 is a false
positive), and the label
false-negative / false-positive rates of the MC > 0 rule next to their closed-form values
(mean over the labelled prefixes of (1 - v)^k and 1 - (1 - rho)^k). Every method annotates at
most `searches` solutions per question (OmegaPRM: search limit; baselines: solutions).

Variants (`VARIANTS`) add the decision rules of `prm_jax.omegaprm.decision`: "2of8" (right
iff >= 2 of k rollouts correct), "lrt" (likelihood ratio with recover_ratio 0.1, an assumed
value, not the setting's p_recover; "lrt.3": 0.3), "+check" (OmegaPRM re-checks the converged
boundary with k more rollouts per boundary prefix; its FP column counts pooled rollouts, so the
k-rollout closed form does not apply). The last lines compare every variant with the
sequential scan (paper rule): accuracy at least the scan's with at most half its rollouts?
"""

from __future__ import annotations

import json
import time

from absl import flags
import numpy as np

from mode_jax import cli
from mode_jax.dataeval import stats
from prm_jax.envs import arithmetic as A
from prm_jax.policy.simulated import SimulatedPolicy
from prm_jax.omegaprm.search import OmegaPRMConfig, omegaprm_search
from prm_jax.omegaprm.shepherd import ShepherdConfig, shepherd_search
from prm_jax.omegaprm.tree import drive


_TWO = dict(decision="c_of_k", min_correct=2)
_LRT = dict(decision="lrt", recover_ratio=0.1)
VARIANTS = {
    "omegaprm": ("omegaprm", {}),
    "omegaprm 2of8": ("omegaprm", _TWO),
    "omegaprm lrt": ("omegaprm", _LRT),
    "omegaprm 2of8+check": ("omegaprm", dict(_TWO, boundary_rollouts=-1)),
    "omegaprm lrt+check": ("omegaprm", dict(_LRT, boundary_rollouts=-1)),
    "omegaprm lrt.3": ("omegaprm", dict(_LRT, recover_ratio=0.3)),
    "math_shepherd": ("math_shepherd", {}),
    "sequential": ("sequential", {}),
    "sequential 2of8": ("sequential", _TWO),
}


def run_method(variant: str, problems, policy, k: int, searches: int, seed: int) -> dict:
  if variant not in VARIANTS:
    raise KeyError(f"--variants: unknown {variant!r}; known: {sorted(VARIANTS)}")
  method, opts = VARIANTS[variant]
  opts = {key: (k if v == -1 else v) for key, v in opts.items()}   # -1: k boundary rollouts

  def search(p):
    if method == "omegaprm":
      return omegaprm_search(p.question, p.answer, A.is_correct,
                             OmegaPRMConfig(k=k, search_limit=searches, **opts))
    mode = "per_step" if method == "math_shepherd" else "sequential"
    return shepherd_search(p.question, p.answer, A.is_correct,
                           ShepherdConfig(mode=mode, k=k, max_solutions=searches, **opts))
  t0 = time.perf_counter()
  results, _ = drive({p.id: (p.question, search(p)) for p in problems}, policy, seed=seed)
  wall = time.perf_counter() - t0
  by_id = {p.id: p for p in problems}
  locs = hits = rollouts = calls = tokens = root_locs = root_hits = 0
  hit_list, hit_q = [], []
  fn = fp = n_good = n_bad = 0
  fn_exp = fp_exp = 0.0
  for pid, res in results.items():
    p = by_id[pid]
    if res.filtered:
      continue
    root_r = res.states[0].rollouts
    rollouts += res.cost.rollouts - root_r
    calls += res.cost.policy_calls - 1
    tokens += res.cost.tokens - res.root_tokens
    for loc in res.localisations:
      hit = loc.predicted == A.first_error(p, loc.solution)
      locs, hits = locs + 1, hits + hit
      hit_list.append(float(hit))
      hit_q.append(pid)
      if loc.state_id == 0:
        root_locs, root_hits = root_locs + 1, root_hits + hit
    for s in res.states[1:]:
      if s.terminal:
        continue
      wrong = A.first_error(p, s.pieces) is not None
      t = len(s.pieces)
      if wrong:
        n_bad += 1
        fp += s.mc > 0
        fp_exp += 1 - (1 - policy.value(p, t, True)) ** k
      else:
        n_good += 1
        fn += s.mc == 0
        fn_exp += (1 - policy.value(p, t, False)) ** k
  h = np.array(hit_list)
  ci = stats.bootstrap(lambda idx: float(h[idx].mean()), len(h), groups=hit_q, n_boot=200,
                       seed=0)
  return {"method": variant, "localised": locs,
          "localisation_ci": (ci["lo"], ci["hi"]),
          "rollouts_per_solution": rollouts / max(1, locs),
          "calls_per_solution": calls / max(1, locs),
          "tokens_per_solution": tokens / max(1, locs),
          "localisation_acc": hits / max(1, locs),
          "root_localisation_acc": root_hits / max(1, root_locs),
          "fn_rate": fn / max(1, n_good), "fn_closed_form": fn_exp / max(1, n_good),
          "fp_rate": fp / max(1, n_bad), "fp_closed_form": fp_exp / max(1, n_bad),
          "labelled_prefixes": n_good + n_bad, "wall_s": wall}


def main(argv=None):
  ap = flags.FlagValues()
  flags.DEFINE_integer("questions", 100, "", flag_values=ap)
  flags.DEFINE_integer("ops", 15, "operations (steps = ops + 1)", flag_values=ap)
  flags.DEFINE_integer("searches", 8, "", flag_values=ap)
  flags.DEFINE_integer("k", 8, "", flag_values=ap)
  flags.DEFINE_string("settings", "0.05:0.0,0.05:0.1,0.1:0.1,0.1:0.3", "p_error:p_recover pairs", flag_values=ap)
  flags.DEFINE_integer("seed", 0, "", flag_values=ap)
  flags.DEFINE_bool("fixed_format", False, "one step format: correct prefixes coincide and states are shared", flag_values=ap)
  flags.DEFINE_string("variants", ",".join(VARIANTS), "comma-separated methods / decision rules: " + ", ".join(VARIANTS), flag_values=ap)
  flags.DEFINE_string("json", "", "also write the rows here", flag_values=ap)
  args = cli.parse_argv(ap, argv)
  cfg = A.ArithmeticConfig(min_ops=args.ops, max_ops=args.ops, max_value=1000)
  problems = A.make_problems(args.questions, cfg, seed=args.seed)
  rows = []
  print(f"{args.questions} questions x {args.ops + 1} steps, k={args.k}, at most "
        f"{args.searches} localised solutions per question, "
        f"{'one step format' if args.fixed_format else 'varied step formats'}")
  print("| p_err | p_rec | method | solutions | rollouts/sol | calls/sol | tokens/sol | "
        "loc. acc [95% CI] | loc. acc (root rollouts) | FN (closed form) | FP (closed form) |")
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  for setting in args.settings.split(","):
    pe, pr = (float(x) for x in setting.split(":"))
    policy = SimulatedPolicy(problems, p_error=pe, p_recover=pr,
                             vary_format=not args.fixed_format)
    for method in args.variants.split(","):
      r = dict(run_method(method, problems, policy, args.k, args.searches, args.seed),
               p_error=pe, p_recover=pr)
      rows.append(r)
      print(f"| {pe} | {pr} | {method} | {r['localised']} | {r['rollouts_per_solution']:.1f} | "
            f"{r['calls_per_solution']:.1f} | {r['tokens_per_solution']:.0f} | "
            f"{r['localisation_acc']:.3f} [{r['localisation_ci'][0]:.3f}, "
            f"{r['localisation_ci'][1]:.3f}] | {r['root_localisation_acc']:.3f} | {r['fn_rate']:.3f} ({r['fn_closed_form']:.3f}) | "
            f"{r['fp_rate']:.3f} ({r['fp_closed_form']:.3f}) |", flush=True)
  for pe_pr in sorted({(r["p_error"], r["p_recover"]) for r in rows}):
    at = {r["method"]: r for r in rows if (r["p_error"], r["p_recover"]) == pe_pr}
    if "sequential" not in at:
      continue
    seq = at["sequential"]
    for name, r in at.items():
      if name == "sequential":
        continue
      ratio = r["rollouts_per_solution"] / max(seq["rollouts_per_solution"], 1e-9)
      ok = r["localisation_acc"] >= seq["localisation_acc"] and ratio <= 0.5
      print(f"p_err={pe_pr[0]} p_rec={pe_pr[1]}: {name}: accuracy "
            f"{r['localisation_acc']:.3f} vs sequential {seq['localisation_acc']:.3f} at "
            f"{ratio:.2f}x its rollouts -> {'meets' if ok else 'misses'} the goal "
            "(>= accuracy, <= 0.5x rollouts)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
