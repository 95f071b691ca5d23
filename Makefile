# The README's commands. Only python3 (3.11+), cargo and make are assumed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: setup build demo test test-python test-rust lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Dependencies and the editable install; redone when pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "maturin>=1.16,<2"
	$(PY) -m pip install --quiet --no-build-isolation -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Rebuilds the Rust extension in place when its sources changed (cargo is incremental).
build: $(STAMP)
	$(VENV)/bin/maturin develop --release --skip-install --quiet

demo: build
	$(VENV)/bin/bifrost demo --out demo-out

test: build test-rust test-python

test-rust:
	cd rust && cargo test --quiet

test-python: build
	$(PY) -m pytest && $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tutorials/sanitize.cfg tutorials

lint: build
	$(VENV)/bin/ruff check bifrost tests benchmarks
	$(VENV)/bin/ruff format --check bifrost tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest bifrost._core --ignore-missing-stub
	$(VENV)/bin/lint-imports
	cd rust && cargo fmt --check
	cd rust && PYO3_PYTHON=$(abspath $(PY)) cargo clippy --all-targets --quiet -- -D warnings

bench: build
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) rust/target demo-out
