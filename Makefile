# wlearn: the course's commands. `make course` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wlearn-installed
# pytest workers are not used: the notebooks train models and share the machine's cores.
PYTEST_ARGS ?=

.PHONY: help install course course-instructor demo slides test unit notebooks site-test lab bench lint clean ce-start

help:
	@echo "make course  - install, execute every lesson on the default data, write the site build/"
	@echo "               (course map, lesson pages with figures, API reference build/api/)"
	@echo "make course-instructor - the same site with the solutions shown, in build/instructor/"
	@echo "make demo    - the site at the classroom size (WLEARN_SIZE=demo: each lesson under a"
	@echo "               minute of CPU), in build/demo/"
	@echo "make slides  - reveal.js decks of the lessons in build/slides/ (slide types from cell tags)"
	@echo "make test    - install, unit tests, every notebook with nbval, then build/ and the"
	@echo "               headless-browser test of the site (chromium)"
	@echo "make lab     - install, register the kernel and open JupyterLab"
	@echo "make bench   - run the speed/memory benchmarks (ratios against a baseline)"
	@echo "make lint    - ruff over the package, tests and notebooks"
	@echo "make ce-start - re-create the cross-entropy ENet that lessons 08-10 start from (about"
	@echo "               16 CPU minutes on one thread; writes wlearn/data/embedded/enet_ce_scenes.*)"

# Install once; re-running a target on a set-up machine does not reinstall.
# torch comes first and alone, pinned: on the course machines pip finds a local CPU wheel;
# elsewhere install the CPU wheel first (README) or pip takes the CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[lab,dev]"
	touch $(STAMP)

install: $(STAMP)

course: $(STAMP)
	$(PY) tools/build_course.py --out build

# Reuses the executed notebooks of `make course` when they are up to date, else executes.
course-instructor: $(STAMP)
	$(PY) tools/build_course.py --instructor --out build/instructor --executed build/notebooks

# Each lesson's key experiment at the classroom size (the sizes: `wlearn.by_size` in each lesson).
demo: $(STAMP)
	WLEARN_SIZE=demo $(PY) tools/build_course.py --out build/demo

# The environment passes through (WLEARN_SIZE=demo make slides: decks from the demo-size run).
slides: $(STAMP)
	$(PY) tools/build_slides.py --out build/slides --executed build/notebooks

unit: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

notebooks: $(STAMP)
	MPLBACKEND=agg WLEARN_STATIC=1 $(PY) -m pytest --nbval-lax notebooks/ -p no:cacheprovider $(PYTEST_ARGS)

# A built site in a headless browser (tests/test_site.py; SITE=build needs `make course` first).
SITE ?= build
site-test: $(STAMP)
	WLEARN_SITE=$(SITE) $(PY) -m pytest tests/test_site.py -p no:cacheprovider $(PYTEST_ARGS)

# nbval checks every lesson's claims at the default size; the site built for the browser test
# runs the lessons again at the demo size (same cells, same pages, half the time).
# The steps run one after the other (no -j): the lessons share the machine's cores.
test: $(STAMP)
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory notebooks
	WLEARN_SIZE=demo $(PY) tools/build_course.py --out build/test-site
	$(MAKE) --no-print-directory site-test SITE=build/test-site

lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name wlearn --display-name "Python (wlearn)"
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check wlearn tests benchmarks data_scripts tools notebooks
	$(VENV)/bin/ruff format --check wlearn tests benchmarks data_scripts tools notebooks

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
	rm -rf build .pytest_cache
