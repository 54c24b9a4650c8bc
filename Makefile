# The two set-up commands of the README are `make demo` and `make test`;
# everything they need is installed from this repository's own files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint typecheck check bench clean kafka-start kafka-stop \
        deploy-tools deploy-sync image

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(BIN)/python scripts/demo.py

PY_DIRS := bridge devtools tests bench scripts

test: venv deploy-tools
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(BIN)/pytest

# helm, psa-check and promtool for tests/deploy (cached in .cache/deploy-tools).
# A failure here is not fatal: the deployment tests then fail naming what is missing.
deploy-tools:
	-scripts/deploy-tools install

# The chart ships copies of the alert rules and the dashboard (Helm reads only its own files).
deploy-sync:
	cp deploy/prometheus/vibes-bridge.rules.yaml deploy/grafana/vibes-bridge-dashboard.json \
	   helm/vibes-bridge/files/

# Build the image without a Docker daemon and smoke-run it (root; needs KAFKA_BOOTSTRAP_SERVERS).
image: venv
	$(BIN)/python scripts/image_smoke.py

lint: venv
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

typecheck: venv
	$(BIN)/mypy

bench: venv
	$(BIN)/python bench/mapping_hot_path.py

kafka-start: venv
	scripts/kafka-local start

kafka-stop:
	scripts/kafka-local stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
