# `make run` and `make test` set everything up from a bare python3: a virtualenv in .venv
# with the exact versions in constraints.txt, then the default experiment or the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Optional extras to install besides dev: ray, postgres, slurm, lightgbm, xgboost, optuna, ui (comma-separated).
EXTRAS ?=
EXTRAS_ALL := ray,postgres,slurm,lightgbm,xgboost,optuna,ui
comma  := ,
STAMP  := $(VENV)/.installed-dev$(if $(EXTRAS),-$(subst $(comma),-,$(EXTRAS)))

.PHONY: install run test test-all lint server bench bench-optuna bench-scale stress lock clean

# pip installs uv (pinned too), which installs the rest: the same pinned versions in ~45 s
# instead of pip's ~140 s (measured: 2 cores, no extras, empty caches), byte-compiled, so
# that no process compiles MLflow at start. BYTECODE= leaves that out (CI does: see .ci/run);
# it is not part of the stamp, so it takes effect on a new .venv (make clean first).
BYTECODE ?= --compile-bytecode
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python $(BYTECODE) -c constraints.txt \
	  -e '.[dev$(if $(EXTRAS),$(comma)$(EXTRAS))]'
	@touch $@

install: $(STAMP)  ## create .venv with the pinned dependencies (EXTRAS=ray,postgres for more; BYTECODE= to skip byte-compiling)

run: $(STAMP)  ## one default run into outputs/mlflow.db; pass overrides as ARGS="model=ridge"
	$(BIN)/sweeplab $(ARGS)

# Tests run in 2 worker processes, one by one as workers free up; a file whose tests share
# an expensive fixture (a Ray head, a PostgreSQL cluster, a module's sweep) marks them
# xdist_group, so that one worker runs them; the fixture is session-scoped, so that it starts
# once even when the worker runs other files' tests in between. The 25 slowest tests are listed
# at the end, so that CI's log says where the time went.
# `make test` leaves out the 16 tests marked slow (end to end, 10-80 s each: a server or a
# worker killed mid-sweep, signals, fresh-store races, the wheel in a fresh venv): they are
# over half the suite's time. test-all and CI run them; TESTS= (empty) runs them here too.
PYTEST_WORKERS ?= 2
TESTS ?= not slow
test: $(STAMP)  ## the test suite but its slow end-to-end tests (real sqlite stores, a real mlflow server); scale-out tests skip without Ray/PostgreSQL
	@$(if $(findstring not slow,$(TESTS)),echo "make test: the tests marked slow are left out (make test TESTS= runs them too; CI runs make test-all)")
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=25 $(if $(TESTS),-m "$(TESTS)") $(PYTEST_ARGS)

# Everything, as CI runs it: Ray, psycopg and Playwright from the extras, PostgreSQL's server
# programs and Chromium from the system (Debian: apt-get install postgresql chromium); a
# skipped test is an error here.
test-all:  ## the whole suite: the slow tests and every extra's (Ray, PostgreSQL, ...), none allowed to skip
	SWEEPLAB_REQUIRE_CLUSTER_TESTS=1 $(MAKE) test EXTRAS=$(EXTRAS_ALL) TESTS=

lint: $(STAMP)  ## ruff (lint + format), mypy, and the import contracts (import-linter)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

server: $(STAMP)  ## the tutorial's tracking server on 127.0.0.1:8080, over outputs/
	$(BIN)/sweeplab-tools server

bench: $(STAMP)  ## sweeplab vs the tutorial's script, the 3x3 sweep grid, a 200,000-row CSV run, 100 jobs vs a hand loop
	$(BIN)/python benchmarks/single_run.py
	$(BIN)/python benchmarks/sweep_grid.py
	$(BIN)/python benchmarks/file_dataset.py
	$(BIN)/python benchmarks/sweep_scale.py

bench-optuna:  ## an Optuna trial's cost vs a grid job's; TPE vs random vs a grid (installs the optuna extra)
	$(MAKE) install EXTRAS=optuna
	$(BIN)/python benchmarks/optuna_search.py

bench-scale:  ## Ray vs joblib, PostgreSQL- vs sqlite-backed server (needs PostgreSQL installed)
	$(MAKE) install EXTRAS=$(EXTRAS_ALL)
	$(BIN)/python benchmarks/scale_out.py

stress: $(STAMP)  ## 4 processes x 25 runs on one sqlite store, 200 runs on a real server
	$(BIN)/python benchmarks/stress.py

lock: $(STAMP)  ## re-pin constraints.txt from what .venv has installed
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --all --exclude-editable | grep -v -E '^(sweeplab|pip)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:  ## remove the virtualenv and everything runs wrote
	rm -rf $(VENV) outputs
