# `make run`: set up .venv and run the main job on the embedded default.
# `make test`: set up .venv and run the whole test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/default

.PHONY: run test setup bench crs crs-tiny clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test]"
	# MovieLens-100k ships inside the recbole wheel; its requirements (torch unpinned, ray) are
	# not wanted: crs_jax.movielens reads the files without importing recbole.
	$(PY) -m pip install --quiet --no-deps "recbole==1.2.1"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m mode_jax.main --config=configs/mode_gemma3.py --workdir=$(WORKDIR)

test: $(STAMP)
	$(PY) -m pytest tests

# RecLLM on Gemma 3 270M at a CPU budget (about 27 minutes on 2 cores); the chat page
# (python -m crs_jax.chat) serves this run by default. crs-tiny: the 2.2M decoder trained here.
crs: $(STAMP)
	$(PY) -m crs_jax.main --config=configs/crs_gemma3.py:cpu --workdir=runs/crs_gemma3_cpu

crs-tiny: $(STAMP)
	$(PY) -m crs_jax.main --config=configs/crs_synthetic.py --workdir=runs/crs

bench: $(STAMP)
	$(PY) -m benchmarks.sampling
	$(PY) -m benchmarks.filters
	$(PY) -m benchmarks.adapters
	$(PY) -m benchmarks.data_pipeline
	$(PY) -m benchmarks.omegaprm
	$(PY) -m benchmarks.crs_retrieval
	$(PY) -m benchmarks.crs_movielens

clean:
	rm -rf runs .pytest_cache
