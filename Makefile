# intercom — build, run, test, ship. `make help` lists the targets.
CARGO    ?= cargo
CONFIG   ?= configs/dev.json
# make cross
TARGET   ?=
# Which ARM targets `make cross-all` builds (the ones CI builds and runs under qemu).
ARM_TARGETS ?= aarch64 armv7 armv6
# make deploy (more knobs, passed through the environment: SSH_OPTS, DEPLOY_ROOT,
# DEPLOY_CONFIG, BIN, LIBC — see cross/deploy.sh)
PI       ?=
ARCH     ?=
# make install
PREFIX   ?= /usr/local
DESTDIR  ?=
BIN      ?= target/release/intercom

.PHONY: all build run test test-unit test-browser lint lint-sh fuzz help deps cross cross-all deploy install \
	systemd-check test-system
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

test: ## Every test: installs missing apt packages, then unit+integration, browser, ARM builds, system tests
	cross/deps.sh
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-browser
	$(MAKE) --no-print-directory cross-all
	$(MAKE) --no-print-directory test-system

test-unit: ## Unit and integration tests (real binary on free ports, real HTTP): cargo test
	$(CARGO) test --locked

test-browser: ## The control page in Debian's headless Chromium (tests/browser/run.sh)
	tests/browser/run.sh

lint: ## Formatting and clippy, as CI checks them
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

lint-sh: ## shellcheck the scripts (cross/, tests/system/, tests/browser/, OpenWrt init, .deb maintainer scripts)
	shellcheck -x cross/*.sh tests/system/*.sh tests/browser/*.sh
	shellcheck -s sh configs/openwrt/intercom.init configs/openwrt/intercom.ntp-hotplug packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm

FUZZ_SECONDS ?= 180
fuzz: ## Run every cargo-fuzz target for FUZZ_SECONDS each (needs nightly and cargo-fuzz)
	cd fuzz && for t in form signature config http_head; do \
		cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 || exit 1; done

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps: ## apt packages for cross builds and system tests (cross/deps.sh, idempotent)
	cross/deps.sh

# ---- cross: static ARM binaries (cross/build.sh picks rustup or Debian build-std) -----------
cross: ## make cross TARGET=aarch64|armv7|armv6|<triple>: static stripped binary, prints path+size
	@test -n "$(TARGET)" || { echo "usage: make cross TARGET=aarch64|armv7|armv6|<rust triple>" >&2; exit 2; }
	@cross/build.sh $(TARGET)

cross-all: ## make cross for every target in ARM_TARGETS (aarch64 armv7 armv6)
	@for t in $(ARM_TARGETS); do $(MAKE) --no-print-directory cross TARGET=$$t || exit 1; done

# ---- deploy: to a Pi over ssh (cross/deploy.sh) ---------------------------------------------
deploy: ## make deploy PI=user@host [ARCH=aarch64|armv7|armv6|host]: build, copy, install, restart
	@test -n "$(PI)" || { echo "usage: make deploy PI=user@host [ARCH=aarch64|armv7|armv6|host]" >&2; exit 2; }
	PI="$(PI)" ARCH="$(ARCH)" cross/deploy.sh

# ---- install: for packagers ------------------------------------------------------------------
install: build ## make install PREFIX=/usr/local DESTDIR=: binary, man page, units, examples, docs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/share/intercom $(DESTDIR)$(PREFIX)/share/doc/intercom/docs \
		$(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/intercom
	for u in intercom.service intercom-tunnel.service; do \
		sed -e 's#/usr/local/bin/intercom#$(PREFIX)/bin/intercom#' \
		    -e 's#/usr/local/share/doc/intercom#$(PREFIX)/share/doc/intercom#' \
		    systemd/$$u > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u; \
		chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u; \
	done
	install -m 0644 systemd/tunnel.env.example $(DESTDIR)$(PREFIX)/share/intercom/tunnel.env.example
	for c in configs/*.json; do \
		test -f "$$c" && install -m 0644 "$$c" $(DESTDIR)$(PREFIX)/share/intercom/$$(basename $$c .json).json.example || true; \
	done
	test ! -f README.md || install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/intercom/README.md
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/intercom/docs/
	install -m 0644 docs/intercom.1 $(DESTDIR)$(PREFIX)/share/man/man1/intercom.1

# ---- systemd-check / test-system -----------------------------------------------------------
systemd-check: ## systemd-analyze verify + security --offline of systemd/*.service
	tests/system/systemd-check.sh

test-system: build ## systemd-check, systemd-boot (nspawn), tunnel, deploy, install, openwrt, deb (dpkg in nspawn), arm-smoke per built ARM target
	tests/system/systemd-check.sh $(BIN)
	tests/system/systemd-boot.sh $(BIN)
	tests/system/tunnel.sh $(BIN)
	INTERCOM_BIN="$(BIN)" tests/system/deploy.sh
	INTERCOM_BIN="$(BIN)" tests/system/install.sh
	INTERCOM_BIN="$(BIN)" tests/system/openwrt.sh
	INTERCOM_BIN="$(BIN)" tests/system/deb.sh
	@n=0; bad=0; for t in aarch64 armv7 armv6; do \
		b=$$(tests/system/arm-smoke.sh --path $$t); test -x "$$b" || continue; \
		n=$$((n+1)); tests/system/arm-smoke.sh $$t "$$b" || bad=$$((bad+1)); \
	done; echo "arm-smoke ran for $$n built ARM target(s) (LIBC=$${LIBC:-musl})"; \
	echo "arm-smoke: $$((n - bad)) passed, $$bad failed"; test $$bad -eq 0

# ---- deb: Debian packages (cross/deb.sh; maintainer scripts in packaging/debian/) -------------
# OpenWrt needs no target of its own: `make deploy PI=root@router` detects it.
DEB_VERSION ?=
DEB_BIN     ?=
.PHONY: deb
deb: ## make deb TARGET=aarch64|armv7|armv6|host [DEB_VERSION=] [DEB_BIN=]: target/deb/TARGET/intercom_<version>_<arch>.deb
	@BIN="$(DEB_BIN)" DEB_VERSION="$(DEB_VERSION)" cross/deb.sh $(or $(TARGET),host)
