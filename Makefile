# berthd build, run and test entry points. `make` builds bin/berthd.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)
PKG     := github.com/berthd/berthd
VERSION ?= 0.1.0
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X $(PKG)/daemon/system.Version=$(VERSION) -X $(PKG)/daemon/system.GitCommit=$(COMMIT) \
           -X $(PKG)/daemon/system.BuildTime=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
ARGS    ?=

.PHONY: all bin/berthd deps run validate test unit bench clean install uninstall

# install: `make install` (as root) puts berthd in $(PREFIX)/bin, the systemd units in $(UNITDIR) with
# ExecStart pointing at that binary, and creates the docker group the socket unit uses when it is missing.
# DESTDIR stages into a tree (packaging): then no group is created. BERTHD_BIN installs a binary built
# elsewhere instead of building bin/berthd.
PREFIX     ?= /usr
DESTDIR    ?=
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/berthd
BERTHD_BIN ?= bin/berthd

all: bin/berthd

bin/berthd:
	$(GO) build -ldflags "$(LDFLAGS)" -o $@ ./cmd/berthd

deps:
	./hack/install-deps.sh

# Foreground daemon with the stock defaults (socket /var/run/docker.sock, data root /var/lib/berth).
run: deps bin/berthd
	./bin/berthd $(ARGS)

validate:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./hack/validate

# The whole suite: validation, unit and package tests, fuzz seed corpora, end-to-end tests on real
# containerd, runc, docker CLI and plugins. Under CI (CI set) a test whose part is missing fails instead of
# skipping (hack/testenv).
STRICT  ?= $(if $(CI),1,)
test: deps validate bin/berthd
	BERTHD_STRICT=$(STRICT) BERTHD_BINARY=$(CURDIR)/bin/berthd $(GO) test -count=1 -timeout 18m ./...

unit:
	$(GO) test -count=1 -short ./...

bench: deps bin/berthd
	./hack/bench/run.sh

install: $(BERTHD_BIN)
	install -D -m 0755 $(BERTHD_BIN) $(DESTDIR)$(PREFIX)/bin/berthd
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	sed 's|/usr/bin/berthd|$(PREFIX)/bin/berthd|g; s|/usr/share/doc/berthd|$(DOCDIR)|g' contrib/systemd/berthd.service \
		> $(DESTDIR)$(UNITDIR)/berthd.service
	install -m 0644 contrib/systemd/berthd.socket $(DESTDIR)$(UNITDIR)/berthd.socket
	chmod 0644 $(DESTDIR)$(UNITDIR)/berthd.service
	install -m 0644 README.md contrib/daemon.json.example $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ]; then \
		getent group docker >/dev/null || groupadd --system docker; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
		echo "installed; enable with: systemctl enable --now berthd.socket berthd.service"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/berthd $(DESTDIR)$(UNITDIR)/berthd.service $(DESTDIR)$(UNITDIR)/berthd.socket
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf bin
