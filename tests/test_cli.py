"""One command-line convention (`mode_jax.cli`): every `python -m` entry point of the project
answers --help with its flags (absl), config-based ones take `--config.a.b=value` overrides
(a key the config lacks is an error naming it), and no module parses arguments another way."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from absl import flags

from mode_jax import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
DIRS = ("mode_jax", "prm_jax", "crs_jax", "benchmarks")


def entry_points() -> list[str]:
  out = []
  for d in DIRS:
    for p in sorted((ROOT / d).rglob("*.py")):
      if re.search(r'^if __name__ == "__main__":', p.read_text(), re.M):
        out.append(".".join(p.relative_to(ROOT).with_suffix("").parts))
  return out


def test_every_entry_point_answers_help_with_its_flags():
  """Each module's `--help` as `python -m` would run it (`cli_help_worker`: one process for
  all of them, flags reset in between; a real subprocess for the main entry point too)."""
  mods = entry_points()
  assert len(mods) >= 25 and "mode_jax.main" in mods and "benchmarks.sampling" in mods
  r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "cli_help_worker.py"), *mods],
                     cwd=ROOT, capture_output=True, text=True, timeout=600,
                     env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert r.returncode == 0, r.stderr[-3000:]
  results = json.loads(r.stdout.strip().splitlines()[-1])
  assert sorted(results) == sorted(mods)
  bad = [f"{m} (exit {code}):\n{out[-800:]}" for m, (code, out) in results.items()
         if code not in (0, 1) or "Traceback" in out or not re.search(r"^ *--\w+", out, re.M)]
  assert not bad, "\n\n".join(bad)
  main = subprocess.run([sys.executable, "-m", "mode_jax.main", "--help"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert "--config" in main.stdout and "--workdir" in main.stdout, main.stdout + main.stderr


def test_no_module_parses_arguments_with_argparse():
  users = [str(p.relative_to(ROOT)) for d in DIRS for p in (ROOT / d).rglob("*.py")
           if re.search(r"^\s*import argparse|argparse\.", p.read_text(), re.M)]
  assert not users, users


def test_config_overrides_are_checked_before_anything_runs(tmp_path):
  r = subprocess.run([sys.executable, "-m", "mode_jax.main", "--config=configs/default.py",
                      f"--workdir={tmp_path}", "--config.sampling.no_such_key=1"], cwd=ROOT,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode != 0 and "no_such_key" in r.stderr
  assert not os.listdir(tmp_path)                 # nothing ran


def test_parse_argv_reports_unknown_missing_and_positional_flags():
  def define(fv):
    flags.DEFINE_integer("n", 3, "a number", flag_values=fv)
    flags.DEFINE_string("out", None, "required", flag_values=fv)
    flags.mark_flag_as_required("out", flag_values=fv)
  fv = cli.parse_flags(define, ["--out=x", "--n=5"])
  assert (fv.n, fv.out) == (5, "x")
  with pytest.raises(flags.Error, match="out"):
    cli.parse_flags(define, ["--n=5"])
  fv = flags.FlagValues()
  define(fv)
  with pytest.raises(flags.Error, match="nope"):
    cli.parse_argv(fv, ["--out=x", "--nope=1"])
  fv = flags.FlagValues()
  define(fv)
  with pytest.raises(flags.Error, match="unexpected arguments"):
    cli.parse_argv(fv, ["--out=x", "a.jsonl"])
  fv = flags.FlagValues()
  define(fv)
  got, rest = cli.parse_argv(fv, ["--out=x", "a.jsonl", "--", "--runner=Direct"],
                             positional=True)
  assert got.out == "x" and rest == ["a.jsonl", "--runner=Direct"]


def test_a_tool_run_from_the_command_line_exits_0_without_echoing_its_result(tmp_path):
  """absl's app.run exits with main's return value and prints it when it is not an int: a
  tool returning its rows printed them all and exited 1 (the bug `cli.main` now prevents)."""
  out = tmp_path / "rows.jsonl"
  r = subprocess.run([sys.executable, "-m", "mode_jax.dataeval.sources", "--source=synthetic",
                      "--num_per_task=2", f"--out={out}"], cwd=ROOT, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "wrote" in r.stdout and "'instance'" not in r.stdout + r.stderr
  assert len(out.read_text().splitlines()) > 10
