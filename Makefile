# Every target creates .venv on first use, so a fresh clone needs no setup step.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: run test test-spark bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	touch $@

run: $(STAMP)
	$(BIN)/hmo demo

test: $(STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The dbt project built on local Spark (pyspark, Java 17) and compared with DuckDB row for row (issue #15).
test-spark: $(STAMP)
	$(BIN)/python -m pytest -m spark -n 0

docs: $(STAMP)
	$(BIN)/hmo docs

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf data/inbox data/archive data/outbox data/reports data/work data/warehouse.duckdb*
