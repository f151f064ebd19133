# tastebud: `make run` sets everything up and runs the main job; `make test` sets up and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The optional extras the tests cover: the Spark engine and the neural models.
EXTRAS_STAMP := $(VENV)/.extras-installed
# The neural models' PyTorch, pinned to the CPU build this machine keeps on disk (pip finds it
# there; an unpinned torch pulls several GB of CUDA libraries). Override for a GPU machine.
TORCH ?= torch==2.13.0

.PHONY: run test lint format bench clean chromium java

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tastebud needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dashboard]'
	# GrowthBook's gbstats, the experiment statistics' parity reference: without its numpy<2
	# and pandas<2 pins, which it does not need (pyproject.toml, dev extra).
	$(BIN)/python -m pip install --quiet --no-deps 'gbstats==0.8.0'
	@touch $(STAMP)

# A world that ends now, the jobs over it, two users' recommendations, then the server in
# the foreground (Ctrl-C stops). tastebud itself is $(BIN)/tastebud (not on PATH).
run: $(STAMP)
	$(BIN)/tastebud quickstart

test: $(STAMP) $(EXTRAS_STAMP) chromium java
	$(BIN)/python -m pytest

# The optional extras (tastebud[spark], tastebud[neural]): their tests run in `make test` and
# CI; `make run` needs neither.
$(EXTRAS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,dashboard,spark,neural]' '$(TORCH)'
	@touch $(EXTRAS_STAMP)

# The Spark engine's tests need a Java runtime: Debian's openjdk-17, installed when missing.
java:
	@bash scripts/install-java.sh

# The app's browser tests (tests/webapp) drive Debian's chromium; installed when missing.
chromium:
	@bash scripts/install-chromium.sh

# lint-imports: the layers of docs/architecture.md ([tool.importlinter] in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py --events 1000000 --runs 3
	$(BIN)/python benchmarks/bench_generate.py --events-target 2.04e7 --quiet

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
