# `make run` and `make test` set everything up from a bare python3: a virtualenv in .venv
# with the exact versions in constraints.txt, then the default experiment or the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint server bench stress lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)  ## create .venv with the pinned dependencies

run: $(STAMP)  ## one default run into outputs/mlflow.db; pass overrides as ARGS="model=ridge"
	$(BIN)/sweeplab $(ARGS)

test: $(STAMP)  ## the whole test suite (real sqlite stores and a real mlflow server)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff (lint + format) and mypy
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

server: $(STAMP)  ## the tutorial's tracking server on 127.0.0.1:8080, over outputs/
	$(BIN)/sweeplab-tools server

bench: $(STAMP)  ## sweeplab vs the tutorial's script, then the 3x3 sweep grid (sequential, joblib)
	$(BIN)/python benchmarks/single_run.py
	$(BIN)/python benchmarks/sweep_grid.py

stress: $(STAMP)  ## 4 processes x 25 runs on one sqlite store, 200 runs on a real server
	$(BIN)/python benchmarks/stress.py

lock: $(STAMP)  ## re-pin constraints.txt from what .venv has installed
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --all --exclude-editable | grep -v -E '^(sweeplab|pip)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:  ## remove the virtualenv and everything runs wrote
	rm -rf $(VENV) outputs multirun
