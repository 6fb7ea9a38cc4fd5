"""The trainer's built-in data kinds (`config.data.kind`, resolved by `mode_jax.resolve`).

Each is `fn(dcfg, vocab, workdir) -> (train task names, eval task names, TaskIdTable)`: it
registers its seqio tasks (ids from the workdir's task-id table, so a resumed run numbers tasks
as the first one did) and returns their names. Other packages add kinds by naming a function of
the same signature, "package.module:function", in their config.
"""

from __future__ import annotations

from mode_jax.data import synthetic as synthetic_suite
from mode_jax.data import tasks
from mode_jax.train import run_data


def synthetic(dcfg, vocab, workdir: str):
  """The synthetic multi-task suite `dcfg.suite` ("bytes": `data.synthetic`, "words":
  `data.synthetic_words`), optionally only `dcfg.only_tasks`."""
  suite = dcfg.get("suite", "bytes")
  prefix = synthetic_suite.PREFIX[suite]
  kw = dict(seed=dcfg.seed, num_train=dcfg.num_train, num_eval=dcfg.num_eval, suite=suite)
  kw["names"] = [t.name for t in synthetic_suite.suite_tasks(suite)]
  if dcfg.get("only_tasks"):
    kw["names"] = [synthetic_suite.bare_name(n, suite) for n in dcfg.only_tasks]
  planned = [prefix + n for n in kw["names"]]
  table = tasks.TaskIdTable.load_or_create(workdir, planned)
  names = tasks.make_synthetic_tasks(vocab, table, **kw)
  return names, names, table


def sni(dcfg, vocab, workdir: str):
  """Super-NaturalInstructions task files under `dcfg.sni_dir` (`data.sni` splits)."""
  budget = dcfg.inputs_len - (run_data.bos_id(dcfg) is not None)   # BOS takes one
  kw = dict(protocol=dcfg.protocol, num_pos=dcfg.num_pos, max_input_tokens=budget)
  built = tasks.make_sni_tasks(dcfg.sni_dir, vocab, **kw)
  table = tasks.TaskIdTable.load_or_create(workdir, built["train"] + built["validation"])
  built = tasks.make_sni_tasks(dcfg.sni_dir, vocab, table, **kw)
  names, evals = built["train"], built["validation"]
  if dcfg.get("only_tasks"):   # seqio names ("sni_task363_...") of the tasks to keep
    names = [n for n in names if n in set(dcfg.only_tasks)]
    evals = [n for n in evals if n in set(dcfg.only_tasks)]
  return names, evals, table


def pretrain(dcfg, vocab, workdir: str):
  """Generic text for pretraining the tiny base (one task, no evaluation tasks)."""
  del workdir
  names = [tasks.make_pretrain_task(vocab, seed=dcfg.seed)]
  return names, [], tasks.TaskIdTable({names[0]: 0})
