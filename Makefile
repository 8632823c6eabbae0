# Two commands for a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,sweep,metrics,app

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

demo: install
	WANDB_MODE=$${WANDB_MODE:-offline} PATH=$(abspath $(VENV))/bin:$$PATH bash scripts/demo.sh

# The import layers first (import-linter's contracts in pyproject.toml, docs/architecture.md): a wrong-way import
# fails here. Then one intra-op thread unless OMP_NUM_THREADS says otherwise (stable timings; tests/conftest.py);
# -rs: skip reasons.
test: install
	$(VENV)/bin/lint-imports --no-cache && WANDB_MODE=offline OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks scripts train.py infer.py
	$(VENV)/bin/ruff format --check src tests benchmarks scripts train.py infer.py

bench: install
	$(PY) benchmarks/cyclegan.py

clean:
	rm -rf $(VENV) .pytest_cache
