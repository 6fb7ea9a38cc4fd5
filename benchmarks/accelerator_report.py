"""Merges the stages of `launch/accelerator_check.sh` into one JSON report:

    python -m benchmarks.accelerator_report OUTDIR      # writes OUTDIR/report.json, prints it

Reads OUTDIR/{kernel_tests.xml, kernel_tests.rc, kernel_bench.json, kernel_bench.rc,
train_step.json, train_step.rc} (any may be missing: that stage is reported as not run) and
adds the platform (jax version, backend, devices). `ok` is true only when every stage exited 0,
the compiled kernel tests ran (not all skipped) and none failed.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from absl import flags

from mode_jax import cli

def _rc(outdir: str, name: str):
  path = os.path.join(outdir, f"{name}.rc")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    text = f.read().strip()
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"{path}: expected an exit code, got {text!r}") from None

def _json(path: str):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not JSON ({e})") from None

def junit_summary(path: str):
  """{"tests", "passed", "failed", "errors", "skipped", "failures": [names]} of a pytest junit
  XML file (None when it does not exist)."""
  if not os.path.exists(path):
    return None
  try:
    root = ET.parse(path).getroot()
  except ET.ParseError as e:
    raise ValueError(f"{path}: not a junit XML file ({e})") from None
  out = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": []}
  for case in root.iter("testcase"):
    out["tests"] += 1
    name = f"{case.get('classname')}::{case.get('name')}"
    if case.find("failure") is not None:
      out["failed"] += 1
      out["failures"].append(name)
    elif case.find("error") is not None:
      out["errors"] += 1
      out["failures"].append(name)
    elif case.find("skipped") is not None:
      out["skipped"] += 1
    else:
      out["passed"] += 1
  return out

def platform() -> dict:
  try:
    import jax
  except ImportError as e:
    return {"error": f"jax does not import: {e}"}
  devs = jax.devices()
  return {"jax": jax.__version__, "backend": jax.default_backend(), "devices": len(devs),
          "device_kind": devs[0].device_kind}

def merge(outdir: str, with_platform: bool = True) -> dict:
  tests = junit_summary(os.path.join(outdir, "kernel_tests.xml"))
  report = {
      "platform": platform() if with_platform else None,
      "kernel_tests": {"rc": _rc(outdir, "kernel_tests"), "summary": tests},
      "kernel_bench": {"rc": _rc(outdir, "kernel_bench"),
                       "result": _json(os.path.join(outdir, "kernel_bench.json"))},
      "train_step": {"rc": _rc(outdir, "train_step"),
                     "result": _json(os.path.join(outdir, "train_step.json"))},
  }
  stages = [report[k]["rc"] for k in ("kernel_tests", "kernel_bench", "train_step")]
  report["ok"] = bool(all(rc == 0 for rc in stages) and tests and tests["passed"] > 0
                      and not tests["failures"])
  return report

def main(argv=None) -> dict:
  """`python -m benchmarks.accelerator_report OUTDIR`: merges OUTDIR's results into
  OUTDIR/report.json (written atomically) and prints it."""
  _, args = cli.parse_argv(flags.FlagValues(), argv, positional=True)
  if len(args) != 1:
    raise SystemExit("usage: python -m benchmarks.accelerator_report OUTDIR")
  report = merge(args[0])
  path = os.path.join(args[0], "report.json")
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(report, f, indent=2)
  os.replace(tmp, path)
  print(json.dumps(report, indent=2))
  return report

if __name__ == "__main__":
  main()
