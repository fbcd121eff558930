# leukonet-harness — the README's commands. `make help` lists them.
PYTHON ?= python3
DATA   ?=
NAME   ?=
DEVICE ?= auto
# demo: experiments side by side, cores split between them (harness.runners.local); JOBS=1 streams one at a time
JOBS   ?= 2
RUN_ARGS = $(if $(NAME),--name $(NAME),)

.PHONY: help setup demo lint test test-fast reproduce-table1 render-table1 doctor bench clean \
        docker-build docker-reproduce-table1 check-gpu-build

help:
	@echo "make demo [JOBS=2]     set up (once) and run all seven Table 1 models, smoke profile, on the embedded synthetic set"
	@echo "make test              set up (once), ruff + mypy on harness/ (make lint), then the test suite"
	@echo "make setup [V=1]       install/build once (quiet; V=1 streams apt/pip/make output; also for demo)"
	@echo "make reproduce-table1 DATA=/path/to/voc   the paper profile (GPU strongly advised)"
	@echo "make render-table1     render the files make reproduce-table1 trains (runs/table1-paper), no training"
	@echo "make doctor            what is installed and usable"
	@echo "make bench             run the benchmark scripts (prints figures)"
	@echo "make docker-build      build the CUDA images (Caffe-SSD, Darknet; needs Docker + NVIDIA toolkit)"
	@echo "make docker-reproduce-table1 DATA=/path/to/voc   the paper profile inside the image"
	@echo "make check-gpu-build   compile+link the GPU Darknet build with nvcc (no GPU needed)"

setup:
	$(if $(V),HARNESS_VERBOSE=1 ,)bash scripts/setup.sh

DEMO_RUN = runs/$(or $(NAME),table1-smoke)

demo: setup
	$(PYTHON) -m harness $(if $(V),-v,) reproduce table1 --profile smoke --jobs $(JOBS) $(RUN_ARGS)
	$(PYTHON) -m harness data synth --out $(DEMO_RUN)/slides --slides 3 --cells-per-slide 200 --scenario aml --quiet
	$(PYTHON) -m harness count $(DEMO_RUN)/models/learning-check_yolov3-tiny_160 --slides $(DEMO_RUN)/slides \
	  --out $(DEMO_RUN)/count --quiet

# pytest must reach the end of its session: a native library that calls exit(0) (libdarknet does on
# an unreadable file) would otherwise end the run early with status 0. conftest.py writes the file.
PYTEST_DONE = $(CURDIR)/.pytest-session-finished
RUN_PYTEST = rm -f $(PYTEST_DONE); HARNESS_PYTEST_SENTINEL=$(PYTEST_DONE) $(PYTHON) -m pytest -q -ra
CHECK_PYTEST = rc=$$?; if [ ! -f $(PYTEST_DONE) ]; then \
	  echo "pytest ended before its session finished (status $$rc): a native library exited the process"; exit 1; fi; \
	  rm -f $(PYTEST_DONE); exit $$rc

# ruff (lint + format) and mypy on harness/ first: style or type errors fail `make test` before pytest runs
lint:
	$(PYTHON) -m ruff check harness
	$(PYTHON) -m ruff format --check harness
	$(PYTHON) -m mypy

test: setup lint
	$(RUN_PYTEST); $(CHECK_PYTEST)

test-fast:
	$(RUN_PYTEST) -m "not slow"; $(CHECK_PYTEST)

reproduce-table1: setup
	@test -n "$(DATA)" || { echo "usage: make reproduce-table1 DATA=/path/to/voc_root [NAME=run-name]"; exit 2; }
	$(PYTHON) -m harness $(if $(V),-v,) reproduce table1 --profile paper --data "$(DATA)" --device $(DEVICE) $(RUN_ARGS)

render-table1:
	$(PYTHON) -m harness render table1 --profile paper $(RUN_ARGS)

doctor:
	$(PYTHON) -m harness doctor

bench:
	for f in bench/bench_*.py; do echo "== $$f"; $(PYTHON) $$f || exit 1; done

clean:
	rm -rf build *.egg-info .pytest_cache

# ---- GPU path (docs/gpu.md). CUDA 11.8 base: sm_61 (GTX 1080 Ti, the paper's) up to sm_90 (H100).
DOCKER ?= docker
IMAGE ?= leukonet-harness-gpu
CUDA_ARCH_LIST ?= 61 75 86 90

docker-build:
	for t in caffe darknet full; do DOCKER_BUILDKIT=1 $(DOCKER) build -f docker/Dockerfile --target $$t \
	  --build-arg CUDA_ARCH_LIST="$(CUDA_ARCH_LIST)" -t $(IMAGE):$$t . || exit 1; done

docker-reproduce-table1:
	@test -n "$(DATA)" || { echo "usage: make docker-reproduce-table1 DATA=/path/to/voc_root [NAME=run-name]"; exit 2; }
	mkdir -p runs
	$(DOCKER) run --rm --init --gpus all -u $$(id -u):$$(id -g) -e HOME=/tmp \
	  -v "$(abspath $(DATA))":/data:ro -v "$(CURDIR)/runs":/runs $(IMAGE):full \
	  python3 -m harness reproduce table1 --profile paper --data /data --project /runs --device $(DEVICE) $(RUN_ARGS)

check-gpu-build:
	bash scripts/check_gpu_build.sh darknet
