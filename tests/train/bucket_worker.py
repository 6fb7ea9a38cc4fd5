"""A short training job (train + final eval) run twice with workdir gs://bucket/run, offline
(tests/fake_bucket.py maps the bucket to STORE); the working directory is CWD, where nothing
may land.

    python tests/train/bucket_worker.py STORE CWD   # prints the job's log
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))


def main():
  store, cwd = sys.argv[1], sys.argv[2]
  os.chdir(cwd)
  from fake_bucket import PREFIX, fake_bucket
  from trainer_harness import small_config
  from mode_jax.train import jobs
  c = small_config({"train.eval_every": 3})
  with fake_bucket(store):
    for _ in range(2):      # the second run resumes from the bucket's checkpoints
      jobs.train_job(c, PREFIX + "run")


if __name__ == "__main__":
  main()
