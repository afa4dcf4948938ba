# culprit's developer entry points. `make test` is what CI runs.
GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOTESTSUM     := gotest.tools/gotestsum@v1.13.0
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN         := $(shell $(GO) env GOPATH)/bin

.PHONY: all build test fuzz vet lint fmt-check demo bench clean es-up es-down

all: build

## build: a static, stripped binary, as the Dockerfile builds it: the SQLite
## driver is pure Go, so cgo buys nothing and would tie the binary to libc.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/culprit ./cmd/culprit

## test: formatting, vet, staticcheck and every test. gotestsum prints one
## line a package and, at the end, every skipped test with its reason, so a
## test that did not run (no Elasticsearch, no chromium, no ../shared) says so.
test: fmt-check vet lint
	@test -x $(GOBIN)/gotestsum || $(GO) install $(GOTESTSUM)
	$(GOBIN)/gotestsum --format pkgname --format-hide-empty-pkg -- -count=1 -timeout 30m ./...

## fuzz: every fuzz target for FUZZTIME (10s) each past its seed corpus
## (scripts/fuzz.sh; FUZZ_ONLY=regexp to pick targets). CI runs it after test.
fuzz:
	bash scripts/fuzz.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint:
	@test -x $(GOBIN)/staticcheck || $(GO) install $(STATICCHECK)
	$(GOBIN)/staticcheck ./...

demo:
	$(GO) run ./cmd/culprit demo

## bench: regenerate BENCHMARKS.md, its tables and plots (scripts/bench/regen.sh).
## Select steps with BENCH_ONLY=corpus,ruptures or BENCH_SKIP=es5m,big.
bench:
	bash scripts/bench/regen.sh

clean:
	rm -rf bin culprit-demo

## es-up: start a local single-node Elasticsearch 8.x on 127.0.0.1 and print
## its URL (Docker when an engine answers, else the integ-test zip from Maven
## Central on the local JDK, as an unprivileged user). es-down stops it.
es-up:
	@bash scripts/es-up.sh

es-down:
	@bash scripts/es-down.sh
