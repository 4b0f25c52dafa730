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
SIEVE_PORT     ?= 4190
METRICS_PORT   ?= 9143
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS   ?= 60
PREFIX         ?= /usr/local
DEB_BUILD_DIR  ?= build-deb

.PHONY: all deps build test fuzz run run-cluster clean install deb

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
	@IMAP_PORT=$(IMAP_PORT) IMAPS_PORT=$(IMAPS_PORT) POP3_PORT=$(POP3_PORT) POP3S_PORT=$(POP3S_PORT) LMTP_PORT=$(LMTP_PORT) SIEVE_PORT=$(SIEVE_PORT) METRICS_PORT=$(METRICS_PORT) sh scripts/demo.sh $(BUILD_DIR)

# The scale-out demo (docs/scale-out.md): nginx's mail proxy on 2143 (IMAP) and 2110 (POP3), the
# router and two backends, under var/cluster; needs nginx-light and libnginx-mod-mail. Ports and
# the data directory are the environment variables listed in scripts/run-cluster.sh.
run-cluster: build
	@sh scripts/run-cluster.sh $(BUILD_DIR)

# Install under PREFIX (programs in sbin and libexec/coffer, man pages, the unit); the
# configuration goes to /etc/coffer for PREFIX /usr or /usr/local, else PREFIX/etc/coffer,
# and an existing coffer.conf or partitions.conf is never replaced. DESTDIR stages it.
install: deps
	@$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_SANITIZE=OFF \
		-DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD_DIR)

# The Debian package (CPack; see dist/CMakeLists.txt): $(DEB_BUILD_DIR)/deb/coffer_VERSION_ARCH.deb
deb: deps
	@sh scripts/deps.sh deb
	@$(CMAKE) -S . -B $(DEB_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_SANITIZE=OFF \
		-DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	@$(CMAKE) --build $(DEB_BUILD_DIR) -j $(JOBS)
	cd $(DEB_BUILD_DIR) && cpack -G DEB
	@ls $(DEB_BUILD_DIR)/deb/*.deb

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR) $(FUZZ_BUILD_DIR) $(DEB_BUILD_DIR)
