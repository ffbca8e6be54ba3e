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

# setup.py builds the optional C kernels of --dtype (swin_convert/core/_castc.c) in place.
BUILD_FILES := pyproject.toml setup.py swin_convert/core/_castc.c
UP_TO_DATE = [ $@ -nt pyproject.toml ] && [ $@ -nt setup.py ] && [ $@ -nt swin_convert/core/_castc.c ]

$(VENV)/.installed: $(BUILD_FILES)
	$(LOCK) sh -c '$(UP_TO_DATE) || { $(VENV_NEW); $(BIN)/pip install -q $(TORCH_PINS) -e ".[timm,transformers,images]" && touch $@; }'

$(VENV)/.installed-test: $(BUILD_FILES)
	$(LOCK) sh -c '$(UP_TO_DATE) || { $(VENV_NEW); $(BIN)/pip install -q $(TORCH_PINS) -e ".[test]" && touch $(VENV)/.installed $@; }'

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
	rm -rf $(VENV) build *.egg-info swin_convert/core/_castc*.so swin_convert/core/_castc*.pyd
