# The README's commands. Only python3 (3.11+), cargo and make are assumed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: setup build demo test test-python test-rust test-packaging lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Every distribution of packages/ editable, with the optional libraries, and the tools of
# the workspace root; redone when any pyproject.toml changes. The editable installs put
# this folder on sys.path, so all of them share the one bifrost/ package here.
# bifrost-analytics is the exception: a maturin editable install would add a second
# bifrost/ to sys.path, so `build` compiles its module in place instead. `bifrost` is
# what the workspace installed before it was split into distributions.
PYPROJECTS := pyproject.toml $(wildcard packages/*/pyproject.toml)
EDITABLE := "packages/bifrost-core[keyring,xlsx]" \
	"packages/bifrost-iot[jupyter,parquet,xarray,zarr,netcdf]" \
	packages/bifrost-opcua packages/bifrost-cloud packages/bifrost-cli
$(STAMP): $(PYPROJECTS) | $(PY)
	$(PY) -m pip install --quiet "hatchling>=1.27" "maturin>=1.16,<2"
	$(PY) -m pip uninstall --quiet --yes bifrost 2>/dev/null || true
	$(PY) -m pip install --quiet --no-build-isolation -e ".[dev]" $(foreach p,$(EDITABLE),-e $(p))
	touch $(STAMP)

setup: $(STAMP)

# Rebuilds the Rust extension in place (bifrost/_core.abi3.so) when its sources changed
# (cargo is incremental); a module built for one Python version before abi3 would shadow it.
build: $(STAMP)
	rm -f bifrost/_core.cpython-*.so
	$(VENV)/bin/maturin develop --release --skip-install --quiet

demo: build
	$(VENV)/bin/bifrost demo --out demo-out

test: build test-rust test-python

test-rust:
	cd rust && cargo test --quiet

test-python: build
	$(PY) -m pytest && $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tutorials/sanitize.cfg tutorials

# The whole packaging matrix: every distribution built once, each profile (core alone,
# edge, OPC UA, analytics, CLI alone, cloud, all) installed alone in a fresh venv.
# `make test` runs the first two (tests/packaging); this adds the rest.
test-packaging: build
	BIFROST_PACKAGING_MATRIX=1 $(PY) -m pytest tests/packaging tests/test_packaging.py

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

# The documentation (docs/conf.py), warnings as errors; incremental, into docs/_build/html.
.PHONY: docs
docs: build
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) rust/target demo-out

# The bad-input property tests (tests/faults/test_bad_input.py), long and randomized:
# FUZZ_EXAMPLES per property instead of the 100 derandomized ones of a normal run.
FUZZ_EXAMPLES ?= 5000
.PHONY: fuzz
fuzz: build
	BIFROST_HYPOTHESIS_PROFILE=fuzz BIFROST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(PY) -m pytest tests/faults/test_bad_input.py --timeout=0 --hypothesis-show-statistics
