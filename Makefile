# intercom — build, test, ship.  `make help` lists the targets.
CARGO    ?= cargo
TARGET   ?=
PI       ?=
ARCH     ?=
PREFIX   ?= /usr/local
DESTDIR  ?=
BIN      ?= target/release/intercom
# Which ARM targets `make cross-all` builds (the ones CI builds and runs under qemu).
ARM_TARGETS ?= aarch64 armv7

.PHONY: help build test cross cross-all deploy install systemd-check test-system deps

help:
	@echo "make build                       cargo build --release"
	@echo "make test                        cargo test, then make test-system"
	@echo "make cross TARGET=aarch64|armv7|armv6|<triple>   static stripped ARM binary"
	@echo "make deploy PI=user@host [ARCH=] build, copy, install, restart over ssh"
	@echo "make install PREFIX=/usr/local DESTDIR=   for packagers"
	@echo "make systemd-check               systemd-analyze verify + security"
	@echo "make test-system                 systemd-check, tunnel, deploy, arm-smoke for built ARM targets"
	@echo "make deps                        apt packages for cross builds and system tests (cross/deps.sh)"

# ---- build / test ----------------------------------------------------------------------
build:
	$(CARGO) build --release

test:
	$(CARGO) test
	$(MAKE) test-system

deps:
	cross/deps.sh

# ---- cross: static ARM binaries (cross/build.sh picks rustup or Debian build-std) -----------
cross:
	@test -n "$(TARGET)" || { echo "usage: make cross TARGET=aarch64|armv7|armv6|<rust triple>" >&2; exit 2; }
	@cross/build.sh $(TARGET)

cross-all:
	@for t in $(ARM_TARGETS); do $(MAKE) --no-print-directory cross TARGET=$$t || exit 1; done

# ---- deploy: to a Pi over ssh (cross/deploy.sh) ---------------------------------------------
deploy:
	@test -n "$(PI)" || { echo "usage: make deploy PI=user@host [ARCH=aarch64|armv7|armv6|host]" >&2; exit 2; }
	PI="$(PI)" ARCH="$(ARCH)" cross/deploy.sh

# ---- install: for packagers ------------------------------------------------------------------
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/share/intercom $(DESTDIR)$(PREFIX)/share/doc/intercom
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

# ---- systemd-check / test-system -----------------------------------------------------------
systemd-check:
	tests/system/systemd-check.sh

test-system: build
	tests/system/systemd-check.sh $(BIN)
	tests/system/tunnel.sh $(BIN)
	INTERCOM_BIN="$(BIN)" tests/system/deploy.sh
	@n=0; bad=0; for b in target/cross/*/release/intercom; do \
		test -x "$$b" || continue; \
		t=$$(basename $$(dirname $$(dirname "$$b"))); \
		case "$$t" in aarch64-*|arm*) n=$$((n+1)); tests/system/arm-smoke.sh "$$t" "$$b" || bad=$$((bad+1));; esac; \
	done; echo "arm-smoke: ran for $$n built ARM target(s), $$bad failed"; test $$bad -eq 0
