# tonbo-ingest: `make demo` runs the main job, `make test` runs the tests. Both install what they
# need (the pinned npm reference server, the Rust dependencies) on first use.
SHELL := bash
CARGO ?= cargo
SERVER_DIR ?= .server

.PHONY: all build release test unit lint demo bench bench-follow server-install server-start server-stop clean install

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

server-install:
	scripts/ds-server install

# Unit tests, then integration tests that drive the real binaries through real pipes against
# the reference server (each test starts its own on a free port, with a temporary data dir).
test: server-install
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

demo: server-install release
	scripts/demo.sh

# Throughput and memory per stage and source, as ratios to floors measured in the same run;
# updates the README's table. BENCH_SIZE=MB per source (default 1000), BENCH_RUNS (default 2).
bench: server-install release
	scripts/bench.py
	scripts/follow-bench.py

# Sidecar mode alone: latency from a line written to its event on the server, and idle CPU.
bench-follow: server-install release
	scripts/follow-bench.py

# A server to play with: `make server-start`, then TONBO_API=$$(scripts/ds-server url .server).
server-start: server-install
	scripts/ds-server start $(SERVER_DIR)

server-stop:
	scripts/ds-server stop $(SERVER_DIR)

# The six stages and the front door scripts/tonbo-ingest, built for release, into BINDIR.
PREFIX ?= $(HOME)/.local
BINDIR ?= $(PREFIX)/bin
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
STAGES := claude-read codex-read opencode-read tonbo-map tonbo-batch tonbo-post

install: release
	install -d "$(BINDIR)"
	install -m 755 $(addprefix $(TARGET_DIR)/release/,$(STAGES)) scripts/tonbo-ingest "$(BINDIR)/"

clean:
	$(CARGO) clean
	rm -rf .demo .server .bench
