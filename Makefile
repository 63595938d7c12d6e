# make demo  : create .venv, install, run the whole pipeline on the bundled debug set (CPU, offline)
# make test  : create .venv, install with test extras, run the test suite
# make bench : the CPU benchmarks (each prints its figure on the last line)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup setup-test demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python src/requirements.txt
	$(BIN)/pip install -q -r src/requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

demo: setup
	$(BIN)/python -m src.main --debug-small --run-name demo-$$(date +%Y%m%d-%H%M%S)

test: setup-test
	$(BIN)/python -m pytest -q

bench: setup-test
	$(BIN)/python benchmarks/train_throughput.py --data ../shared/data/dialogsum-ko/dev.csv
	$(BIN)/python benchmarks/inference_throughput.py
	$(BIN)/python benchmarks/augment_throughput.py

clean:
	rm -rf output/demo-* model/demo-* data/clean data/augmented
