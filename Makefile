# Two entry points for a fresh machine with Python 3.11 and pip (see README):
#   make demo   create .venv, install, run the demo search on the embedded defaults
#   make test   create .venv, install, run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean postgres

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "nasseg needs Python 3.11, found " + sys.version.split()[0]'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: on CPU machines this takes the CPU build, on GPU nodes the CUDA one.
	# --no-compile: pip byte-compiles on one core; compileall below does it on all of them
	$(BIN)/pip install -q --no-compile torch==2.13.0
	# editable, so code edits take effect; setuptools' generic "Editable installation ... be careful
	# with folders named like your package" notice is silenced (it is the layout we want)
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q --no-compile -e '.[test]'
	# aihwkit last and without its declared deps (torchvision would break torch; see pyproject.toml):
	# installed before the rest, pip's resolver would print an ERROR about those deps on every set-up
	$(BIN)/pip install -q --no-compile --no-deps aihwkit==1.1.0
	# the byte-code pip would have written, on every core (make setup 123 -> 80 s on 2 cores, measured);
	# like pip, it skips the files it cannot compile (a few packages ship templates for other Pythons)
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	# compile the fused analog simulator's numba kernels once (cached on disk for every process)
	$(BIN)/python -m trainers.analog.kernels
	touch $@

demo: setup
	$(BIN)/nasseg search configs/demo.yaml

# the suite in 2 pytest-xdist workers, a test module at a time (its module-scoped search or server
# runs once): a serial run spends most of its time waiting on subprocesses (searches, Ray, servers).
# Modules in the order tests/conftest.py gives them (the slow ones first), not xdist's own. (Not
# --dist loadgroup: with pytest 9.2 it silently stops grouping, pytest-xdist issue #1386, and a
# module's shared search then runs once per worker.)
test: setup postgres
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=30

# The MLflow-server test needs PostgreSQL's server binaries (Debian package); install them when we
# can (root with apt), otherwise that one test skips and says why.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) ; } || \
	  echo "PostgreSQL not installed: the MLflow server test will be skipped"

bench: setup
	$(BIN)/python benchmarks/bench_train.py --write
	$(BIN)/python benchmarks/bench_search.py --write
	$(BIN)/python benchmarks/bench_strategies.py --write

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
