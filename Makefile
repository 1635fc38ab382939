# Two commands do all set-up on a fresh machine: `make reproduce-table1` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install test demo bench clean reproduce-table1 reproduce-table2 reproduce-table3 reproduce-alpha reproduce-steps reproduce-pfgm reproduce-genphys reproduce-demos check-regression

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The tests, then the metric-regression gate (small-subset sweep vs results/baselines/ci.csv).
test: $(STAMP)
	$(BIN)/pytest -q
	$(BIN)/pfgmbench check-regression --baseline results/baselines/ci.csv

demo: $(STAMP)
	$(BIN)/pfgmbench train --preset digits --D 128 --kimg 10 --out runs/demo --resume auto
	$(BIN)/pfgmbench sample --run runs/demo --seeds 0-63 --steps 18 --out runs/demo/samples
	@echo "sample grid: runs/demo/samples-grid.png"

# PFGM++ Table 1 at proxy scale on the embedded digits (CPU, < 30 min); SCALE=paper runs CIFAR-10 on GPUs.
# Outputs go to $(OUT)/<table>-<scale>/ (untracked runs/reproduce by default, so every clone really
# reruns); OUT=results refreshes the committed copy. table3 / alpha / steps reuse $(OUT)/table1-<scale>.
SCALE ?= proxy
OUT   ?= runs/reproduce
reproduce-table1 reproduce-table2 reproduce-table3 reproduce-alpha reproduce-steps reproduce-pfgm reproduce-genphys: reproduce-%: $(STAMP)
	$(BIN)/pfgmbench reproduce $* --scale $(SCALE) --out-dir $(OUT)/$*-$(SCALE)

# The talk's pictures: backward-ODE trajectories of PFGM and PFGM++ on 2-D data, and the failure
# without the z dimension (CPU, about a minute; exact fields, no training).
reproduce-demos: $(STAMP)
	$(BIN)/pfgmbench demos --out $(OUT)/demos

check-regression: $(STAMP)
	$(BIN)/pfgmbench check-regression --baseline results/baselines/ci.csv

bench: $(STAMP)
	$(BIN)/pfgmbench bench --preset digits --json

clean:
	rm -rf runs
