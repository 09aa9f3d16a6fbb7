# The two commands of the README: `make example` and `make test`.
VENV := .venv
export HF_HUB_OFFLINE := 1

.PHONY: setup example test lint

$(VENV)/.installed: pyproject.toml requirements.lock requirements-airflow.lock scripts/setup.sh
	bash scripts/setup.sh

setup: $(VENV)/.installed

example: setup
	$(VENV)/bin/pipeline make-example --output example
	$(VENV)/bin/pipeline run extract --input example/catalog.csv --output features

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest
