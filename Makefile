# Each target creates or updates .venv itself, so a fresh clone needs only python3.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU wheel available on the build machines; override with
#   make test TORCH_SPEC="torch==2.5.1"   or   make test TORCH_SPEC=   (no torch)
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2
RUFF_SPEC ?= ruff==0.17.6
# the lowest supported versions: keep equal to the floors in pyproject.toml
MINDEPS ?= numpy==2.0.0 scipy==1.13.0 scikit-learn==1.6.0 joblib==1.3.0 threadpoolctl==3.1.0 array-api-compat==1.11

.PHONY: demo test test-notorch test-mindeps bench lint docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q $(TORCH_SPEC) -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m skebm.demo

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

# the whole suite where torch is absent: torch tests skip, the NumPy backend must pass
test-notorch:
	$(PYTHON) -m venv .venv-notorch
	.venv-notorch/bin/python -m pip install -q -e ".[test]"
	.venv-notorch/bin/python -m pytest $(PYTEST_ARGS)

# the whole suite on the dependency floors declared in pyproject.toml (MINDEPS)
test-mindeps:
	$(PYTHON) -m venv .venv-mindeps
	.venv-mindeps/bin/python -m pip install -q --upgrade pip
	.venv-mindeps/bin/python -m pip install -q $(MINDEPS) $(TORCH_SPEC) -e ".[test]"
	.venv-mindeps/bin/python -m pip check
	.venv-mindeps/bin/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_rbm.py
	$(PY) benchmarks/bench_hopfield.py
	$(PY) benchmarks/bench_langevin.py
	$(PY) benchmarks/bench_vae.py

lint: $(VENV)/.installed
	$(PY) -m pip install -q $(RUFF_SPEC)
	$(PY) -m ruff check skebm tests benchmarks examples
	$(PY) -m ruff format --check skebm tests benchmarks examples

# the documentation site, with the gallery executed, in docs/_build/html (offline)
docs: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[docs]"
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .venv-notorch .venv-mindeps build *.egg-info .pytest_cache docs/_build docs/auto_examples docs/generated
