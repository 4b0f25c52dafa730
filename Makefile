# Coffer: a thin Makefile over CMake. `make run` starts a demo server; `make test` runs every test.
BUILD_DIR      ?= build
TEST_BUILD_DIR ?= build-test
JOBS           ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE          ?= cmake

.PHONY: all deps build test run clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

# The test build uses AddressSanitizer and UndefinedBehaviorSanitizer.
test: deps
	@$(CMAKE) -S . -B $(TEST_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DCOFFER_SANITIZE=ON >/dev/null
	@$(CMAKE) --build $(TEST_BUILD_DIR) -j $(JOBS)
	cd $(TEST_BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

run: build
	@sh scripts/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR)
