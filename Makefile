# The two commands of the README, plus dist / bench / lint / fmt.
# Each installs what it needs and is safe to run again.

CARGO ?= cargo

.PHONY: demo test dist lint fmt bench toolchain

demo: toolchain
	$(CARGO) run -q -p smartretry --example demo
	$(CARGO) run -q -p smartretry-cli -- simulate

test: toolchain lint
	scripts/test.sh

# What users install, into dist/: wheel, npm tarballs, jar, Go module (scripts/dist.sh).
dist: toolchain
	scripts/dist.sh

lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: toolchain
	$(CARGO) fmt --all

bench: toolchain
	$(CARGO) bench -p smartretry --bench engine
	$(CARGO) bench -p smartretry --bench memory

# rustfmt and clippy ship with rustup's default profile; add them when a minimal one lacks them.
toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
