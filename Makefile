# deploybot — see README.md.
GO       ?= go
BIN      ?= bin/deploybot
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
# DEPLOYBOT_TEST_SCALE (a positive number, default 1) multiplies every
# wait in the tests (package e2e/scale): set it on a busy machine. The
# whole suite, real servers included, stays well under 20 minutes times it.
TEST_SCALE := $(or $(DEPLOYBOT_TEST_SCALE),1)
TIMEOUT  ?= $(shell awk 'BEGIN { s = "$(TEST_SCALE)" + 0; if (s <= 0) s = 1; printf "%dm", int(20 * s + 0.999) }')
# How long `make fuzz` runs each fuzz target, and how long it may spend
# shrinking each new input it finds (the default, a minute, can stall a
# short run on every new input).
FUZZTIME ?= 60s
FUZZMINIMIZETIME ?= 5s
FUZZ     = CGO_ENABLED=0 $(GO) test -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME)

.PHONY: all build test test-short faults lint bench bench-micro fuzz demo deps clean

all: lint build test

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/deploybot

# Runs `go test -json` and prints each package's result, failing tests'
# output, and at the end how many tests ran and were skipped, and why.
SUMMARY  = bin/testsummary

# Everything, including the end-to-end tests against real InspIRCd + Anope,
# sshd hosts, PostgreSQL and Prometheus. It needs root and the packages of
# scripts/install-deps.sh: as root on Debian it installs what is missing,
# otherwise it fails naming what is missing. CI=true makes every test that
# needs a missing server fail instead of skipping, so a green `make test`
# means every end-to-end test ran.
test: $(SUMMARY)
	scripts/install-deps.sh --for-tests
	CI=true CGO_ENABLED=0 $(SUMMARY) $(GO) test -json -count=1 -timeout $(TIMEOUT) ./...

# Unit tests only: no servers, no root (the end-to-end tests skip).
test-short: $(SUMMARY)
	CGO_ENABLED=0 $(SUMMARY) $(GO) test -json -short -count=1 -timeout $(TIMEOUT) ./...

$(SUMMARY): scripts/testsummary/*.go
	CGO_ENABLED=0 $(GO) build -o $@ ./scripts/testsummary

# The fault suite alone (e2e/faults, real servers, root; `make test` runs
# it too), then every case with its outcome and duration. It fails when a
# case failed, none ran, or go test did.
faults: $(SUMMARY)
	CI=true CGO_ENABLED=0 $(SUMMARY) -cases $(GO) test -json -count=1 -timeout $(TIMEOUT) ./e2e/faults/

# gofmt, go vet, and shellcheck on the shell code run on targets (the
# fragments deployer/remote embeds).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v shellcheck >/dev/null || { echo "lint: shellcheck is not installed (see scripts/install-deps.sh)"; exit 1; }
	shellcheck deployer/remote/scripts/*.sh

# Regenerates docs/PERFORMANCE.md and docs/performance.svg: simulated
# fleets of 10 to 1,000 hosts (e2e/simfleet) and 50 real sshd hosts beside
# parallel-ssh and Ansible (needs root and scripts/install-deps.sh).
bench:
	DEPLOYBOT_BENCH_REPORT=$(CURDIR)/docs/PERFORMANCE.md CGO_ENABLED=0 $(GO) test -count=1 -run '^$$' -bench BenchmarkPerformanceReport -benchtime 1x -timeout 20m ./e2e/

# Every other benchmark, once.
bench-micro:
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 $$($(GO) list ./... | grep -v '/e2e$$')
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench '^Benchmark(Deploy20VsPssh|PostgresSearch|StatusLatency)$$' -benchtime 1x -count 1 ./e2e/

# Native Go fuzzing, one target at a time (-fuzz takes one per run). A
# finding is written to the package's testdata/fuzz/<Target>/, where it
# stays as a seed that every `go test` runs.
fuzz:
	$(FUZZ) -fuzz '^FuzzParseCommand$$' ./bot
	$(FUZZ) -fuzz '^FuzzIncomingLine$$' ./bot
	$(FUZZ) -fuzz '^FuzzSplitText$$' ./bot
	$(FUZZ) -fuzz '^FuzzParse$$' ./config
	$(FUZZ) -fuzz '^FuzzLinkify$$' ./sal/web
	$(FUZZ) -fuzz '^FuzzRenderers$$' ./sal/web
	$(FUZZ) -fuzz '^FuzzMarkers$$' ./deployer/remote

# A local sandbox: InspIRCd + Anope on 127.0.0.1:16667, a fleet of sshd
# hosts with a demo service to deploy, and the bot with examples/sandbox.yaml
# (see cmd/deploybot-sandbox). Needs root for the servers and the fleet.
# Run as a binary of its own (not `go run`), so that Ctrl-C, SIGTERM and a
# closed terminal's SIGHUP reach it directly and it tears everything down.
demo: deps build
	CGO_ENABLED=0 $(GO) build -o bin/deploybot-sandbox ./cmd/deploybot-sandbox
	bin/deploybot-sandbox -c examples/sandbox.yaml -bin $(BIN)

deps:
	scripts/install-deps.sh

clean:
	rm -rf bin examples/sandbox-data
	$(GO) clean -testcache
