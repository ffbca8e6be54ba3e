# swin-convert: `make demo` and `make test` work on a fresh machine (they create .venv).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision are pinned to the releases this machine's pip finds on disk.
TORCH_PINS := "torch==2.14.1" "torchvision==0.29.1"

.PHONY: demo test install install-test bench clean

# Two `make demo` / `make test` runs at once share one install: the first installs under a lock
# (util-linux flock where there is one), the second waits and finds the stamp up to date.
LOCK := $(shell command -v flock >/dev/null 2>&1 && echo "flock .venv.lock")
VENV_NEW := [ -x $(BIN)/python ] || { $(PY) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip; }

$(VENV)/.installed: pyproject.toml
	$(LOCK) sh -c '[ $@ -nt pyproject.toml ] || { $(VENV_NEW); $(BIN)/pip install -q $(TORCH_PINS) -e ".[timm,transformers,images]" && touch $@; }'

$(VENV)/.installed-test: pyproject.toml
	$(LOCK) sh -c '[ $@ -nt pyproject.toml ] || { $(VENV_NEW); $(BIN)/pip install -q $(TORCH_PINS) -e ".[test]" && touch $(VENV)/.installed $@; }'

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/python examples/remap_demo.py
	$(BIN)/python examples/demo.py

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q tests

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/remap.py

clean:
	rm -rf $(VENV) build *.egg-info
