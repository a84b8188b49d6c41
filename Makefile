# a2q: `make demo` runs the main job on Cora (train, export, golden model), `make test` runs the test suite,
# `make bench` the long benchmarks. Each creates .venv and installs the project if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SEED   ?= 0

.PHONY: demo test regress bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/a2q train --dataset Cora --model gcn --method a2q --seed $(SEED) --out runs/cora-gcn-a2q
	$(BIN)/a2q golden runs/cora-gcn-a2q/graph --out runs/cora-gcn-a2q/golden

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q tests

# The RTL regression with 2000 random cases per (unit, signedness, simulator); JUnit XML in build/regress.
regress: $(STAMP)
	mkdir -p build
	A2Q_RTL_CASES=2000 $(BIN)/python -m pytest -n 2 -q tests/test_rtl_units.py --basetemp build/regress

bench: $(STAMP)
	$(BIN)/a2q bench train --out bench
	$(BIN)/a2q bench golden --out bench
	$(BIN)/a2q bench rtl --out bench

clean:
	rm -rf runs build .pytest_cache
