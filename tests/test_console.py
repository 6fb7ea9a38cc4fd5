"""The quiet terminal of the project's commands (`mode_jax.console`): library log noise written
to fd 2 (C++ logs of TensorFlow / XLA / sentencepiece, seqio's per-task warnings) goes to a log
file; the project's lines, real warnings and tracebacks still reach the terminal."""

import os
import pathlib
import subprocess
import sys

from mode_jax import console

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796517406.586472   23038 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796517408.465950   23038 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
    "normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty. use identity normalization.",
    "W1206 00:37:35.507034 139771593120640 dataset_providers.py:462] Using an uncached "
    "FunctionDataset for training is not recommended",
    "W1206 00:37:41.467522 139771593120640 utils.py:1368] Task 'words_count_words' not cached so "
    "using number of input examples",
    "W0000 00:00:1796518009.636534   23038 cache_dataset_ops.cc:912] The calling iterator did "
    "not fully read the dataset being cached.",
]
KEEP = [
    "W1206 00:37:35.507034 139771593120640 checkpoint.py:12] a real warning from the project",
    "E0000 00:00:1796517408.465950   23038 pjrt_client.cc:52] a real XLA error",
    "UserWarning: something the user should see",
]


def test_noise_patterns_match_only_library_noise():
  assert all(console.NOISE.search(line) for line in NOISE)
  assert not any(console.NOISE.search(line) for line in KEEP)


def test_installed_filter_routes_fd2_noise_to_the_log_and_keeps_the_rest(tmp_path):
  script = ("import os, sys\nfrom mode_jax import console\nconsole.install('t')\n"
            f"lines = {NOISE + KEEP!r}\n"
            "for line in lines:\n  os.write(2, (line + '\\n').encode())\n"
            "print('python stderr line', file=sys.stderr)\n"
            "raise SystemExit('a traceback-like exit message')\n")
  r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                     timeout=120, env=dict(os.environ, MODE_JAX_CACHE=str(tmp_path)))
  assert r.returncode == 1
  for line in KEEP + ["python stderr line", "a traceback-like exit message"]:
    assert line in r.stderr
  for line in NOISE:
    assert line not in r.stderr
  logs = list(pathlib.Path(tmp_path, "logs").glob("t-*.log"))
  assert len(logs) == 1 and logs[0].read_text().count("\n") == len(NOISE)
  assert f"({len(NOISE)} library log lines in {logs[0]})" in r.stderr


def test_verbose_turns_it_off_and_library_imports_do_not_install(tmp_path):
  script = ("import os\nfrom mode_jax import cli, console\nassert console._INSTALLED is None\n"
            "console.install('t')\nos.write(2, b'normalizer.cc(51) LOG(INFO) x\\n')\n")
  r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                     timeout=120, env=dict(os.environ, MODE_JAX_CACHE=str(tmp_path),
                                           MODE_JAX_VERBOSE="1"))
  assert r.returncode == 0, r.stderr
  assert "normalizer.cc(51) LOG(INFO) x" in r.stderr
