# gokdump — see README.md. `make help` lists the targets.

GO       ?= go
GOARCH   ?= $(shell $(GO) env GOARCH)
BIN      := bin
STATIC   := CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH)
# The inits of the other architecture (amd64 and arm64: each can build a
# capture image for the other) go in bin/$(OTHER_ARCH)/ and install under
# $(LIBDIR)/gokdump/$(OTHER_ARCH)/; OTHER_ARCH= builds and installs the
# host's only (the Debian package does).
OTHER_ARCH ?= $(if $(filter arm64,$(GOARCH)),amd64,arm64)
INITS    := gokdump-init gokdump-init-s3 gokdump-vmtest-init
GOFLAGS_REL := -trimpath -buildvcs=false -ldflags='-s -w'
# QEMU crash tests take minutes each under TCG; give the whole run room.
TEST_TIMEOUT ?= 80m
# What `gokdump version` prints: the VERSION and COMMIT files a `make dist`
# tarball carries, else git's description of the checkout.
VERSION ?= $(shell cat VERSION 2>/dev/null || git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT  ?= $(shell cat COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null)

.PHONY: all build test test-kernel test-race unit qemu-test qemu-test-arm64 demo lint fuzz bench clean help deps install

all: build ## the same as build

build: ## build bin/gokdump (stamped with VERSION and COMMIT), the static capture inits bin/gokdump-init and bin/gokdump-init-s3 (with the S3 client), gokdump vmtest's first-kernel init bin/gokdump-vmtest-init, and the same three inits for OTHER_ARCH in bin/OTHER_ARCH/ (build --arch)
	$(STATIC) $(GO) build -trimpath -buildvcs=false -ldflags='-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)' -o $(BIN)/gokdump ./cmd/gokdump
	$(call build-inits,$(GOARCH),$(BIN))
	$(if $(OTHER_ARCH),$(call build-inits,$(OTHER_ARCH),$(BIN)/$(OTHER_ARCH)))

# The three inits for GOARCH $(1) into directory $(2).
define build-inits
	CGO_ENABLED=0 GOOS=linux GOARCH=$(1) $(GO) build $(GOFLAGS_REL) -tags nos3 -o $(2)/gokdump-init ./initramfs
	CGO_ENABLED=0 GOOS=linux GOARCH=$(1) $(GO) build $(GOFLAGS_REL) -o $(2)/gokdump-init-s3 ./initramfs
	CGO_ENABLED=0 GOOS=linux GOARCH=$(1) $(GO) build $(GOFLAGS_REL) -o $(2)/gokdump-vmtest-init ./qemu-tests/stage1
endef

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

qemu-test-arm64: deps build ## the arm64 cycles under TCG through gokdump's kexec_load loader (Debian 6.12 arm64 at levels 31 and 1 on NVMe, 31 on virtio-blk with a gokdump build --arch arm64 image; the newest line on virtio-blk; gokdump vmtest; the capture at estimate's size; ~5 min)
	GOKDUMP_ARM64_FULL=1 $(GO) test -count=1 -timeout 20m -v -run 'TestCrashARM64|TestVMTestARM64' ./qemu-tests/
	GOKDUMP_ARM64_FULL=1 $(GO) test -count=1 -timeout 10m -v -run 'TestEstimate/arm64' ./qemu-tests/

test-race: ## -race -short on the save pipeline (capture/pipeline, diskdump, codec), as make test runs it
	scripts/run-tests race

# make test-kernel's gokdump vmtest run: build-capture-kernel's output,
# the JUnit file and what --keep keeps (serial.log, vmcore, report.json).
KERNEL_RESULTS ?= $(or $(GOKDUMP_CACHE),.cache)/test-results/test-kernel

test-kernel: deps build ## build the dedicated capture kernel with configs/kdump.config (~36 min the first time on 2 cores), run gokdump vmtest on it (no --modules) and its QEMU crash test
	rm -rf $(KERNEL_RESULTS) && mkdir -p $(KERNEL_RESULTS)
	scripts/build-capture-kernel --fragment configs/kdump.config >$(KERNEL_RESULTS)/build.env
	@# The kernel crashes into itself: every driver built in, no --modules.
	rc=0; $(BIN)/gokdump vmtest --kernel "$$(sed -n 's/^KERNEL=//p' $(KERNEL_RESULTS)/build.env)" \
		--kconfig "$$(sed -n 's/^CONFIG=//p' $(KERNEL_RESULTS)/build.env)" \
		--junit $(KERNEL_RESULTS)/junit.xml --keep $(KERNEL_RESULTS)/keep || rc=$$?; \
	GOKDUMP_TEST_KERNEL=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v -run TestEmbeddedCaptureKernel ./qemu-tests/ || rc=1; \
	exit $$rc

lint: ## gofmt, go vet, staticcheck (installed from the module proxy if missing)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || [ -x $$($(GO) env GOPATH)/bin/staticcheck ] || \
	  $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	PATH=$$PATH:$$($(GO) env GOPATH)/bin staticcheck ./...

demo: deps build ## crash a QEMU guest end to end and show the saved dump (DEMO_FLAGS='-kernel latest', '-arch arm64')
	scripts/demo $(DEMO_FLAGS)

# Where `make install` puts things, as distributions lay them out: PREFIX
# for the programs, the unit (systemd reads PREFIX/lib/systemd/system for
# /usr and /usr/local) and the docs; the kernel hooks where the kernel's
# packages run them whatever PREFIX is (/etc/kernel, and kernel-install's
# /usr/lib/kernel/install.d). The unit and the hooks are written with
# PREFIX's gokdump in them.
PREFIX     ?= /usr
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/gokdump
SYSCONFDIR ?= /etc
KERNELINSTALLDIR ?= /usr/lib/kernel/install.d
# The installed files that name gokdump's path: the source ones say /usr/bin/gokdump.
SUBST = sed 's|/usr/bin/gokdump|$(BINDIR)/gokdump|g; s|/usr/share/doc/gokdump|$(DOCDIR)|g'

install: build ## install gokdump, its capture inits and vmtest's first-kernel init (OTHER_ARCH's in LIBDIR/gokdump/OTHER_ARCH/), the systemd unit and kernel hooks (DESTDIR, PREFIX; see README)
	install -D -m 0755 $(BIN)/gokdump $(DESTDIR)$(BINDIR)/gokdump
	install -D -m 0755 $(BIN)/gokdump-init $(DESTDIR)$(LIBDIR)/gokdump/init
	install -D -m 0755 $(BIN)/gokdump-vmtest-init $(DESTDIR)$(LIBDIR)/gokdump/vmtest-init
	install -D -m 0755 $(BIN)/gokdump-init-s3 $(DESTDIR)$(LIBDIR)/gokdump/init-s3
	$(if $(OTHER_ARCH),for f in $(INITS); do \
		install -D -m 0755 $(BIN)/$(OTHER_ARCH)/$$f $(DESTDIR)$(LIBDIR)/gokdump/$(OTHER_ARCH)/$${f#gokdump-} || exit 1; done)
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/kernel/postinst.d $(DESTDIR)$(SYSCONFDIR)/kernel/postrm.d \
		$(DESTDIR)$(KERNELINSTALLDIR) $(DESTDIR)$(DOCDIR)
	$(SUBST) configs/gokdump.service >$(DESTDIR)$(UNITDIR)/gokdump.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/gokdump.service
	$(SUBST) scripts/kernel-hooks/postinst.d-gokdump >$(DESTDIR)$(SYSCONFDIR)/kernel/postinst.d/zz-gokdump
	$(SUBST) scripts/kernel-hooks/postrm.d-gokdump >$(DESTDIR)$(SYSCONFDIR)/kernel/postrm.d/zz-gokdump
	$(SUBST) scripts/kernel-hooks/60-gokdump.install >$(DESTDIR)$(KERNELINSTALLDIR)/60-gokdump.install
	chmod 0755 $(DESTDIR)$(SYSCONFDIR)/kernel/postinst.d/zz-gokdump $(DESTDIR)$(SYSCONFDIR)/kernel/postrm.d/zz-gokdump \
		$(DESTDIR)$(KERNELINSTALLDIR)/60-gokdump.install
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 configs/gokdump.toml $(DESTDIR)$(DOCDIR)/gokdump.toml.example
	@[ -e $(DESTDIR)$(SYSCONFDIR)/gokdump.toml ] || install -D -m 0600 configs/gokdump.toml $(DESTDIR)$(SYSCONFDIR)/gokdump.toml

.PHONY: uninstall dist deb
uninstall: ## remove what install put there (DESTDIR, PREFIX); /etc/gokdump.toml and built images stay
	rm -f $(DESTDIR)$(BINDIR)/gokdump $(DESTDIR)$(LIBDIR)/gokdump/init $(DESTDIR)$(LIBDIR)/gokdump/vmtest-init $(DESTDIR)$(LIBDIR)/gokdump/init-s3 $(DESTDIR)$(UNITDIR)/gokdump.service \
		$(DESTDIR)$(SYSCONFDIR)/kernel/postinst.d/zz-gokdump $(DESTDIR)$(SYSCONFDIR)/kernel/postrm.d/zz-gokdump \
		$(DESTDIR)$(KERNELINSTALLDIR)/60-gokdump.install $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/gokdump.toml.example
	for a in amd64 arm64; do rm -f $(DESTDIR)$(LIBDIR)/gokdump/$$a/init $(DESTDIR)$(LIBDIR)/gokdump/$$a/init-s3 $(DESTDIR)$(LIBDIR)/gokdump/$$a/vmtest-init; \
		rmdir $(DESTDIR)$(LIBDIR)/gokdump/$$a 2>/dev/null; done; true
	-rmdir $(DESTDIR)$(LIBDIR)/gokdump $(DESTDIR)$(DOCDIR) 2>/dev/null

# make dist: the source of this commit (git archive) with VERSION and COMMIT
# files, so that a build from the tarball says what it is.
DIST := gokdump-$(VERSION)
dist: ## write out/gokdump-VERSION.tar.gz, the source of HEAD (uncommitted changes are not in it)
	@mkdir -p out
	rm -rf out/$(DIST) out/$(DIST).tar.gz
	git archive --format=tar --prefix=$(DIST)/ HEAD | tar -x -C out
	echo '$(VERSION)' >out/$(DIST)/VERSION
	echo '$(COMMIT)' >out/$(DIST)/COMMIT
	tar -C out --sort=name --owner=0 --group=0 --numeric-owner --mtime='@$(shell git log -1 --format=%ct 2>/dev/null || echo 0)' \
		-czf out/$(DIST).tar.gz $(DIST)
	rm -rf out/$(DIST)
	@echo "wrote out/$(DIST).tar.gz"

deb: ## build the Debian package out/gokdump_VERSION_ARCH.deb with dpkg-buildpackage (needs debhelper, Go)
	scripts/build-deb

bench: deps build ## compare gokdump save with makedumpfile (speed, memory, size); writes BENCHMARKS.md
	$(GO) run ./qemu-tests/bench $(BENCH_FLAGS)

clean: ## remove build output, bin/ and out/ (keeps the download cache in .cache/)
	rm -rf $(BIN) out

help: ## this list
	@echo "make targets:"
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'
	@echo "install variables: PREFIX ($(PREFIX)), DESTDIR, BINDIR, LIBDIR, UNITDIR, DOCDIR, SYSCONFDIR, KERNELINSTALLDIR;"
	@echo "  VERSION ($(VERSION)) and COMMIT (what gokdump version says)"
	@echo "variables: GOARCH (gokdump's and bin/'s inits' arch, default $(GOARCH)), OTHER_ARCH (inits also built in bin/OTHER_ARCH/ and"
	@echo "  installed in LIBDIR/gokdump/OTHER_ARCH/, default $(OTHER_ARCH); empty: none), TEST_TIMEOUT ($(TEST_TIMEOUT)), FUZZ_SHORT ($(FUZZ_SHORT)), FUZZTIME ($(FUZZTIME)),"
	@echo "  BENCH_FLAGS (e.g. '-runs 3 -qemu=false -inputs 1G'; go run ./qemu-tests/bench -h lists them), DEMO_FLAGS,"
	@echo "  KERNEL_RESULTS (make test-kernel's vmtest output, default $(KERNEL_RESULTS))"
	@echo "  environment: GOKDUMP_LINES (kernel lines of the QEMU tests), GOKDUMP_CACHE (download cache, default .cache),"
	@echo "  QEMU_PARALLEL (QEMU guests at a time in the tests, default 2)"
