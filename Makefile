# Two commands set everything up on a fresh machine:
#   make demo   create .venv, install, fetch missing reference data, run the main job -> outputs/
#   make test   create .venv, install with test extras, run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt
STAMP := $(VENV)/.installed
# The map viewer's NiiVue bundle comes from the npm registry at set-up time (never committed).
NIIVUE := src/brainexpr/viewer/static/niivue-0.69.0.umd.js

.PHONY: demo test install benchmark clean

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[test]"
	@touch $(STAMP)

$(NIIVUE): $(STAMP)
	$(PY) -m brainexpr.viewer.assets

install: $(STAMP) $(NIIVUE)

demo: install
	$(PY) -m brainexpr run --out outputs

test: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadgroup -q

benchmark: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) outputs .pytest_cache $(NIIVUE)
