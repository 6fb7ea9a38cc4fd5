"""Runs `python -m <module> --help` for each module named on the command line inside this one
process (imports are shared, so the whole set costs about one start-up), each as `__main__`
with absl's global flags reset in between. Prints one JSON line: {module: [exit code, output]}.
"""

import contextlib
import io
import json
import os
import runpy
import sys

from absl import app, flags, logging  # noqa: F401  (their flags are absl's own: kept)


def main(modules):
  sys.path.insert(0, os.getcwd())        # the repository root (benchmarks/, configs/)
  app.define_help_flags()                # absl defines them once, on the first app.run
  builtin = set(flags.FLAGS)
  out = {}
  for mod in modules:
    buf = io.StringIO()
    sys.argv = [mod, "--help"]
    code = 0
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
      try:
        runpy.run_module(mod, run_name="__main__", alter_sys=True)
      except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
      except Exception as e:   # noqa: BLE001  (reported, not raised: the next module runs)
        code, _ = 99, buf.write(f"Traceback: {type(e).__name__}: {e}")
    for name in set(flags.FLAGS) - builtin:    # the next module defines its own
      delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
    out[mod] = [code, buf.getvalue()]
  print(json.dumps(out))


if __name__ == "__main__":
  main(sys.argv[1:])
