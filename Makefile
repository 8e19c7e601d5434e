# ironclone — top-level build. `make demo` and `make test` are the two entry points.
SHELL := /bin/bash
TARGET := x86_64-unknown-linux-musl
BIN := target/$(TARGET)/release/ironclone
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all setup build iso netboot check-static test test-all test-fast test-qemu fuzz lint fmt demo demo-files bench clean

all: build

## setup: install the Debian packages and the rustup target (idempotent)
setup:
	@bash scripts/setup.sh

## build: the statically linked release binary
build: setup
	$(CARGO) build --release --locked --target $(TARGET)
	@$(MAKE) --no-print-directory check-static

## iso: the hybrid live ISO (BIOS+UEFI, CD+USB) in build/ironclone.iso, plus build/initramfs.img
iso: build
	@bash image/build-iso.sh $(BIN) build/ironclone.iso

## netboot: a PXE/UEFI network boot root in build/netboot/ (same kernel, initramfs and menu);
## prints the DHCP boot file for each firmware (bios: FILE, uefi: FILE)
netboot: iso
	@bash image/build-netboot.sh build/kernel/vmlinuz build/initramfs.img build/netboot

## (not `tee /dev/stderr`: when stderr is a log file, tee reopens it and truncates it)
check-static:
	@out=$$(file $(BIN)) && echo "$$out" && echo "$$out" | grep -Eq 'statically linked|static-pie linked' \
	  || { echo "error: $(BIN) is not statically linked" >&2; exit 1; }

## lint: formatting, clippy and shellcheck, warnings are errors
lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	@bash scripts/shellcheck.sh

fmt:
	$(CARGO) fmt --all

## test-fast: unit and integration tests (loop devices, real mkfs tools; needs root).
## Tests that need root are #[ignore = "needs root"], so a plain `cargo test` passes
## without it; --include-ignored runs them here.
test-fast: setup
	$(CARGO) test --locked -- --test-threads=2 --include-ignored

## fuzz: every cargo-fuzz target for FUZZ_SECONDS each (default 15; `make test` uses 10)
FUZZ_SECONDS ?= 15
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

## test-qemu: boots under QEMU (TCG); QEMU_SUITE=ci skips the scripts marked `# suite: all`
QEMU_SUITE ?= all
test-qemu: iso
	@QEMU_SUITE=$(QEMU_SUITE) bash tests/qemu/run-all.sh

## test: what CI runs (lint, build, test-fast, fuzz 10 s a target, the CI QEMU scripts),
## with the time of each phase at the end
test:
	@bash scripts/suite.sh ci

## test-all: everything (fuzz 15 s a target, every QEMU script)
test-all:
	@bash scripts/suite.sh all

## demo: the main job end to end through the live ISO (backup, restore 1.5x and 0.6x, boot both)
demo: iso
	@bash scripts/demo-live.sh

## demo-files: the same with the host CLI on image files, no ISO (faster)
demo-files: build
	@bash scripts/demo.sh

## bench: speed and size against partclone/ntfsclone and zstd
bench: build
	@bash scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf build
