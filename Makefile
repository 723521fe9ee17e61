# gokdump — see README.md. `make help` lists the targets.

GO       ?= go
GOARCH   ?= $(shell $(GO) env GOARCH)
BIN      := bin
STATIC   := CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH)
GOFLAGS_REL := -trimpath -buildvcs=false -ldflags='-s -w'
# QEMU crash tests take minutes each under TCG; give the whole run room.
TEST_TIMEOUT ?= 80m

.PHONY: all build test test-kernel test-race unit qemu-test demo lint fuzz bench clean help deps install

all: build ## build bin/gokdump and the static capture init bin/gokdump-init

build:
	$(STATIC) $(GO) build $(GOFLAGS_REL) -o $(BIN)/gokdump ./cmd/gokdump
	$(STATIC) $(GO) build $(GOFLAGS_REL) -o $(BIN)/gokdump-init ./initramfs

deps: ## install missing apt packages the tests and demo need (qemu, makedumpfile, drgn, …)
	scripts/install-deps

# Seconds each fuzz target runs inside `make test`; `make fuzz` runs longer.
FUZZ_SHORT ?= 5s
FUZZTIME   ?= 2m

test: deps build lint ## everything CI runs: lint, short fuzzing, the QEMU crash tests on the kernel matrix (keeping their vmcores), the unit tests on those (strict), -race on the save pipeline; ends with the kernel table and every skip
	scripts/fuzz $(FUZZ_SHORT)
	TEST_TIMEOUT=$(TEST_TIMEOUT) scripts/run-tests

fuzz: ## every fuzz target for FUZZTIME each (default 2m); failing inputs land in testdata/fuzz/ as seeds
	scripts/fuzz $(FUZZTIME)

unit: ## unit tests only (no QEMU)
	$(GO) test -short -count=1 ./...

qemu-test: deps build ## only the QEMU crash tests, with the kernel table (GOKDUMP_LINES="6.1 latest" picks lines)
	TEST_TIMEOUT=$(TEST_TIMEOUT) scripts/run-tests qemu

test-race: ## -race -short on the save pipeline (capture/pipeline, diskdump, codec), as make test runs it
	scripts/run-tests race

test-kernel: deps build ## build the dedicated capture kernel (~36 min the first time on 2 cores) and run its QEMU crash test
	scripts/build-capture-kernel
	GOKDUMP_TEST_KERNEL=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v -run TestEmbeddedCaptureKernel ./qemu-tests/

lint: ## gofmt, go vet, staticcheck (installed from the module proxy if missing)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || [ -x $$($(GO) env GOPATH)/bin/staticcheck ] || \
	  $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	PATH=$$PATH:$$($(GO) env GOPATH)/bin staticcheck ./...

demo: deps build ## crash a QEMU guest end to end and show the saved dump (DEMO_FLAGS='-kernel latest')
	scripts/demo $(DEMO_FLAGS)

PREFIX  ?= /usr
DESTDIR ?=
install: build ## install gokdump, its capture init, the systemd unit and kernel hooks (DESTDIR, PREFIX)
	install -D -m 0755 $(BIN)/gokdump $(DESTDIR)$(PREFIX)/bin/gokdump
	install -D -m 0755 $(BIN)/gokdump-init $(DESTDIR)$(PREFIX)/lib/gokdump/init
	install -D -m 0644 configs/gokdump.service $(DESTDIR)/etc/systemd/system/gokdump.service
	install -D -m 0755 scripts/kernel-hooks/postinst.d-gokdump $(DESTDIR)/etc/kernel/postinst.d/zz-gokdump
	install -D -m 0755 scripts/kernel-hooks/postrm.d-gokdump $(DESTDIR)/etc/kernel/postrm.d/zz-gokdump
	install -D -m 0755 scripts/kernel-hooks/60-gokdump.install $(DESTDIR)$(PREFIX)/lib/kernel/install.d/60-gokdump.install
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/gokdump/README.md
	@[ -e $(DESTDIR)/etc/gokdump.toml ] || install -D -m 0600 configs/gokdump.toml $(DESTDIR)/etc/gokdump.toml

bench: deps build ## compare gokdump save with makedumpfile (speed, memory, size); writes BENCHMARKS.md
	$(GO) run ./qemu-tests/bench $(BENCH_FLAGS)

clean: ## remove build output (keeps the download cache in .cache/)
	rm -rf $(BIN)

help: ## this list
	@echo "make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo "variables: GOARCH (capture init arch, default $(GOARCH)), TEST_TIMEOUT ($(TEST_TIMEOUT)), FUZZ_SHORT ($(FUZZ_SHORT)), FUZZTIME ($(FUZZTIME)),"
	@echo "  BENCH_FLAGS (e.g. '-runs 3 -qemu=false -inputs 1G'; go run ./qemu-tests/bench -h lists them), DEMO_FLAGS,"
	@echo "  environment: GOKDUMP_LINES (kernel lines of the QEMU tests), GOKDUMP_CACHE (download cache, default .cache)"
