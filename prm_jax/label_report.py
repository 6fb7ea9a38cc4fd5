"""The dataset quality report of process-supervision data (OmegaPRM / Math-Shepherd records,
synthetic tasks, policy samples): `mode_jax.dataeval.report` with the label-quality section of
`prm_jax.label_quality`.

    python -m prm_jax.label_report --generated=runs/omegaprm/records.jsonl --text_field=steps \\
        --exact=arithmetic --out=runs/omegaprm/report [--reference=B.jsonl] [--test=T.jsonl]

Flags: those of `mode_jax.dataeval.report`, plus --mc_field, --steps_field and --exact (a
prefix checker for label agreement; "arithmetic" also derives each question's difficulty, its
number of operations; "gsm8k_calc" is one-sided: prefixes with a false written calculation).
"""

from __future__ import annotations

from typing import Callable, Sequence

from absl import flags

from mode_jax import cli
from mode_jax.dataeval import report
from prm_jax import label_quality


def define_flags(fv: flags.FlagValues) -> None:
  """The report's flags and the label section's."""
  report.define_flags(fv)
  flags.DEFINE_string("mc_field", "mc", "The MC label field.", flag_values=fv)
  flags.DEFINE_string("steps_field", "steps", "The steps (list) field.", flag_values=fv)
  flags.DEFINE_enum("exact", "none", ["none"] + sorted(label_quality.REPORT_CHECKS),
                    "Exact prefix labels for label agreement.", flag_values=fv)


def run(fv: flags.FlagValues, log: Callable = print) -> dict:
  """The report with the label section; returns its result."""
  sec = label_quality.section(mc_field=fv.mc_field, steps_field=fv.steps_field,
                              exact=fv.exact)
  return report.run(fv, (sec,), log=log)


def main(argv: Sequence[str], log: Callable = print) -> dict:
  """The report of `argv` (flags as on the command line), in-process."""
  return run(cli.parse_flags(define_flags, argv), log=log)


if __name__ == "__main__":
  cli.tool_main(define_flags, lambda fv, args: run(fv))
