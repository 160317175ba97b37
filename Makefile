# intercom — build, run, test. `make help` lists the targets.
CARGO ?= cargo
CONFIG ?= configs/dev.json

.PHONY: all build run test lint fuzz help
all: build

build: ## Release build of the host binary (target/release/intercom)
	$(CARGO) build --release --locked

run: ## Start the server on the development config
	$(CARGO) run --locked -- serve --config $(CONFIG)

test: ## Every test: unit, integration (real binary, real sockets)
	$(CARGO) test --locked

lint: ## Formatting and clippy, as CI checks them
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

FUZZ_SECONDS ?= 180
fuzz: ## Run every cargo-fuzz target for FUZZ_SECONDS each (needs nightly and cargo-fuzz)
	cd fuzz && for t in form signature config http_head; do \
		cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 || exit 1; done

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
