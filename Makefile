# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: test demo bench lint data graphviz clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,plot,data,fast,tune,track,dist]"
	touch $(STAMP)

# Fashion-MNIST from Debian's package where apt is usable and the files are missing.
data:
	@if [ ! -f $(FMNIST) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
		|| echo "note: could not install dataset-fashion-mnist; tests that need it will skip"; \
	fi

# Graphviz's `dot` (Debian's graphviz package) draws chainrule.viz pictures; its tests skip
# without it.
graphviz:
	@if ! command -v dot >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -q graphviz >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q graphviz >/dev/null 2>&1)) \
		|| echo "note: could not install graphviz; the drawing tests will skip"; \
	fi

# The suite runs twice: with the compiled (Numba) kernels a plain install runs, then with the
# pure-NumPy ones it falls back to where Numba cannot be imported (chainrule.kernels).
test: $(STAMP) data graphviz
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 tests
	CHAINRULE_KERNELS=numpy $(PY) -m pytest -n 2 tests

demo: $(STAMP) data
	$(PY) -m chainrule train --model cnn --dataset fashion-mnist --out runs/demo --overwrite

bench: $(STAMP) data
	$(PY) bench/run_all.py

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
