# Two commands do all set-up on a fresh machine: `make demo` (or a reproduce target) and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/pfgmbench train --preset digits --D 128 --kimg 10 --out runs/demo --resume auto
	$(BIN)/pfgmbench sample --run runs/demo --seeds 0-63 --steps 18 --out runs/demo/samples
	@echo "sample grid: runs/demo/samples/grid.png"

bench: $(STAMP)
	$(BIN)/pfgmbench bench --preset digits --json

clean:
	rm -rf runs
