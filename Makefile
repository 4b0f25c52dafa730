# Coffer: a thin Makefile over CMake. `make run` starts a demo server; `make test` runs every test.
BUILD_DIR      ?= build
TEST_BUILD_DIR ?= build-test
JOBS           ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE          ?= cmake
IMAP_PORT      ?= 1143
IMAPS_PORT     ?= 1993
POP3_PORT      ?= 1110
POP3S_PORT     ?= 1995
LMTP_PORT      ?= 2424
METRICS_PORT   ?= 9143
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS   ?= 60

.PHONY: all deps build test fuzz run clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_SANITIZE=OFF >/dev/null
	@$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

# The test build uses AddressSanitizer and UndefinedBehaviorSanitizer.
test: deps
	@$(CMAKE) -S . -B $(TEST_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DCOFFER_SANITIZE=ON >/dev/null
	@$(CMAKE) --build $(TEST_BUILD_DIR) -j $(JOBS)
	cd $(TEST_BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# libFuzzer: every fuzz target built with clang (-fsanitize=fuzzer,address,undefined) and run
# for FUZZ_SECONDS each, one after the other; a table of executions at the end.
fuzz: deps
	@sh scripts/deps.sh fuzz
	@CC=clang $(CMAKE) -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_FUZZ=ON >/dev/null
	@$(CMAKE) --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target fuzz-targets
	sh scripts/fuzz.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

run: build
	@IMAP_PORT=$(IMAP_PORT) IMAPS_PORT=$(IMAPS_PORT) POP3_PORT=$(POP3_PORT) POP3S_PORT=$(POP3S_PORT) LMTP_PORT=$(LMTP_PORT) METRICS_PORT=$(METRICS_PORT) sh scripts/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR) $(FUZZ_BUILD_DIR)
