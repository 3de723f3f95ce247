# The two commands of the README. Each creates the virtual environment if needed.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[test]'
	touch $@

## demo: set up and run the embedded offline demo (snakemake --cores all)
demo: $(BIN)/.installed
	$(BIN)/snakemake --cores all

## test: set up and run the whole test suite; the Debian packages the tests use are
## installed first when run as root (.ci/system-packages.sh says what it cannot do)
test: $(BIN)/.installed
	bash .ci/system-packages.sh
	$(BIN)/python -m pytest

## lint: formatting and static checks
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint
