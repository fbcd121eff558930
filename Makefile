# leukonet-harness — the README's commands. `make help` lists them.
PYTHON ?= python3
DATA   ?=
NAME   ?=
DEVICE ?= auto
# demo: experiments side by side, cores split between them (harness.runners.local); JOBS=1 streams one at a time
JOBS   ?= 2
RUN_ARGS = $(if $(NAME),--name $(NAME),)

.PHONY: help setup demo lint test test-fast reproduce-table1 render-table1 doctor bench clean \
        docker-base docker-image docker-image-gpu docker-demo docker-reproduce-table1 check-gpu-build

help:
	@echo "make demo [JOBS=2]     set up (once) and run all seven Table 1 models, smoke profile, on the embedded synthetic set"
	@echo "make test              set up (once), ruff + mypy on harness/ (make lint), then the test suite"
	@echo "make setup [V=1]       install/build once (quiet; V=1 streams apt/pip/make output; also for demo)"
	@echo "make reproduce-table1 DATA=/path/to/voc   the paper profile (GPU strongly advised)"
	@echo "make render-table1     render the files make reproduce-table1 trains (runs/table1-paper), no training"
	@echo "make doctor            what is installed and usable"
	@echo "make bench             run the benchmark scripts (prints figures)"
	@echo "make docker-base       a Debian 12 base image made here (mmdebstrap), for machines without Docker Hub"
	@echo "make docker-image      the cpu image (leukonet-harness:cpu): what make setup builds, in Docker"
	@echo "make docker-image-gpu  the gpu image (leukonet-harness:gpu): CUDA 13 from PyPI wheels [CUDA_ARCH_LIST=...]"
	@echo "make docker-demo       make demo's smoke run inside the cpu image (--runner docker)"
	@echo "make docker-reproduce-table1 DATA=/path/to/voc   the paper profile in the gpu image (--gpus)"
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

# ---- Docker (docs/gpu.md): docker/Dockerfile, targets cpu and gpu, built by scripts/docker_build.sh
# (skips the build when an image with the same inputs hash exists). BASE_IMAGE empty: debian:bookworm-slim
# when Docker Hub answers, else the local mmdebstrap base of `make docker-base`.
DOCKER ?= docker
BASE_IMAGE ?=
CUDA_ARCH_LIST ?= 75 86 89 90
CPU_IMAGE = leukonet-harness:cpu
GPU_IMAGE = leukonet-harness:gpu
DOCKER_BUILD = DOCKER=$(DOCKER) BASE_IMAGE="$(BASE_IMAGE)" bash scripts/docker_build.sh
DOCKER_RUN = $(DOCKER) run --rm --init -u $$(id -u):$$(id -g) -e HOME=/tmp -v "$(CURDIR)":"$(CURDIR)" -w "$(CURDIR)"

docker-base:
	DOCKER=$(DOCKER) bash scripts/docker_base.sh

docker-image:
	$(DOCKER_BUILD) cpu $(CPU_IMAGE)

docker-image-gpu:
	CUDA_ARCH_LIST="$(CUDA_ARCH_LIST)" $(DOCKER_BUILD) gpu $(GPU_IMAGE)

# `make demo` in the cpu image: the harness on this host hands the command to the container (--runner docker).
docker-demo: docker-image
	$(PYTHON) -m harness $(if $(V),-v,) reproduce table1 --profile smoke --device cpu --jobs $(JOBS) $(RUN_ARGS) \
	  --runner docker --image $(CPU_IMAGE)
	$(DOCKER_RUN) $(CPU_IMAGE) python3 -m harness data synth --out $(DEMO_RUN)/slides --slides 3 --cells-per-slide 200 \
	  --scenario aml --quiet
	$(DOCKER_RUN) $(CPU_IMAGE) python3 -m harness count $(DEMO_RUN)/models/learning-check_yolov3-tiny_160 \
	  --slides $(DEMO_RUN)/slides --out $(DEMO_RUN)/count --quiet

docker-reproduce-table1: docker-image-gpu
	@test -n "$(DATA)" || { echo "usage: make docker-reproduce-table1 DATA=/path/to/voc_root [NAME=run-name]"; exit 2; }
	$(PYTHON) -m harness $(if $(V),-v,) reproduce table1 --profile paper --data "$(DATA)" --device gpu $(RUN_ARGS) \
	  --runner docker --image $(GPU_IMAGE)

check-gpu-build:
	bash scripts/check_gpu_build.sh darknet
