# wlearn: the course's commands. `make course` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wlearn-installed
# pytest workers are not used: the notebooks train models and share the machine's cores.
PYTEST_ARGS ?=
# The course site: Sphinx + myst-nb + sphinx-book-theme (docs/conf.py). One process, no -j:
# tools/sphinx_wlearn.py writes the "What reproduces" page after every lesson has run.
SPHINX := $(PY) -m sphinx -b html
SPHINX_ARGS ?=
PORT ?= 8000

.PHONY: help install course course-instructor demo serve test unit notebooks site-test \
	lab-test lab bench lint clean ce-start

help:
	@echo "make course  - install, execute every lesson once, write the course site into build/"
	@echo "               (lessons, course map, search, bibliography, API reference, What reproduces,"
	@echo "               build/claims.json)"
	@echo "make serve   - serve build/ on http://127.0.0.1:$(PORT)/ (search needs http)"
	@echo "make course-instructor - the same site with the solutions shown, in build/instructor/"
	@echo "make demo    - the site at the classroom size (WLEARN_SIZE=demo), in build/demo/"
	@echo "make test    - install, unit tests, every notebook with nbval, the demo-size site in a"
	@echo "               browser (Playwright + chromium), the explorers live in JupyterLab"
	@echo "make lab     - install, register the kernel and open JupyterLab (RISE slides: the"
	@echo "               toolbar's RISE button)"
	@echo "make bench   - run the speed/memory benchmarks (ratios against a baseline)"
	@echo "make lint    - ruff over the package, tests, tools and notebooks"
	@echo "make ce-start - re-create the cross-entropy ENet that lessons 08-10 start from (about"
	@echo "               16 CPU minutes on one thread; writes wlearn/data/embedded/enet_ce_scenes.*)"

# Install once; re-running a target on a set-up machine does not reinstall.
# torch comes first and alone, pinned: on the course machines pip finds a local CPU wheel;
# elsewhere install the CPU wheel first (README) or pip takes the CUDA build. The install also
# compiles wlearn's C kernel (wlearn/losses/_pixel_lanes.c): a change to it reinstalls.
$(STAMP): pyproject.toml setup.py wlearn/losses/_pixel_lanes.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[lab,dev]"
	touch $(STAMP)

install: $(STAMP)

# Each lesson runs once (myst-nb through jupyter-cache, build/.jupyter_cache/<size>/<hash>); a later
# build at the same size reuses the executed notebooks until a lesson or wlearn changes.
course: $(STAMP)
	$(SPHINX) docs build $(SPHINX_ARGS)

course-instructor: $(STAMP)
	$(SPHINX) -t instructor docs build/instructor $(SPHINX_ARGS)

# Each lesson's key experiment at the classroom size (the sizes: `wlearn.by_size` in each lesson).
demo: $(STAMP)
	WLEARN_SIZE=demo $(SPHINX) docs build/demo $(SPHINX_ARGS)

serve:
	@echo "the course site: http://127.0.0.1:$(PORT)/index.html (Ctrl-C stops)"
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory build

unit: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

notebooks: $(STAMP)
	MPLBACKEND=agg WLEARN_STATIC=1 $(PY) -m pytest --nbval-lax notebooks/ -p no:cacheprovider $(PYTEST_ARGS)

# The site in a browser (tests/test_site.py; SITE=build checks the site of `make course`).
SITE ?= build
site-test: $(STAMP)
	WLEARN_SITE=$(SITE) $(PY) -m pytest tests/test_site.py -p no:cacheprovider $(PYTEST_ARGS)

# The lessons with an explorer, run in a real JupyterLab at the demo size (tests/test_lab.py).
lab-test: $(STAMP)
	WLEARN_LAB_TEST=1 $(PY) -m pytest tests/test_lab.py -p no:cacheprovider $(PYTEST_ARGS)

# nbval checks every lesson's claims at the default size; the site for the browser test runs
# them again at the demo size (build/test-site/, its own jupyter-cache). The steps run one after
# the other (no -j): the lessons share the machine's cores. Each step prints its time.
test: $(STAMP)
	time $(MAKE) --no-print-directory unit
	time $(MAKE) --no-print-directory notebooks
	time WLEARN_SIZE=demo $(SPHINX) docs build/test-site $(SPHINX_ARGS)
	time $(MAKE) --no-print-directory site-test SITE=build/test-site
	time $(MAKE) --no-print-directory lab-test

lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name wlearn --display-name "Python (wlearn)"
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check wlearn tests benchmarks data_scripts tools docs/conf.py notebooks
	$(VENV)/bin/ruff format --check wlearn tests benchmarks data_scripts tools docs/conf.py notebooks

# The cross-entropy starting point of lessons 08-10 (wlearn/segment/start.py): generated scenes
# in the Cityscapes layout, `python -m wlearn.segment train` on one thread, then the weights and
# their manifest (commands, seed, git commit, data version, SHA-256, CPU time, val IoU).
# Commit the code first: the manifest records the commit it was trained from.
CE_START := wlearn/data/embedded/enet_ce_scenes.pt
CE_DIR := build/ce_start
CE_SCENES := --n-train 2000 --n-val 100 --height 64 --width 128 --seed 0
CE_TRAIN := --loss ce --width 0.5 --batch-size 8 --epochs 24 --lr 5e-3 --weight-decay 2e-4 --seed 0
ce-start: $(STAMP)
	rm -rf $(CE_DIR)
	$(PY) data_scripts/make_scenes.py --root $(CE_DIR)/scenes $(CE_SCENES)
	OMP_NUM_THREADS=1 $(PY) -m wlearn.segment train --data $(CE_DIR)/scenes $(CE_TRAIN) --out $(CE_DIR)/run
	$(PY) -m wlearn.segment export --run $(CE_DIR)/run --data $(CE_DIR)/scenes --out $(CE_START)

clean:
	rm -rf build .pytest_cache docs/api
