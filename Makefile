# intercom — build, run, test. `make help` lists the targets.
CARGO ?= cargo
CONFIG ?= configs/dev.json

.PHONY: all build run test test-unit lint help
all: build

# ---- bench: speed, memory, start time, size vs a Flask baseline (bench/run.sh, BENCHMARKS.md) ----
QUICK ?=
.PHONY: bench
bench: ## make bench [QUICK=1]: release build, loopback load on intercom and a Flask baseline, prints the table
	QUICK="$(QUICK)" bench/run.sh

build: ## Release build of the host binary (target/release/intercom)
	$(CARGO) build --release --locked

run: ## Start the server on the development config
	$(CARGO) run --locked -- serve --config $(CONFIG)

test: ## Every test: unit, integration (real binary, real sockets)
	$(CARGO) test --locked

lint: ## Formatting and clippy, as CI checks them
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
