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

.PHONY: all build test test-short lint bench fuzz demo deps clean

all: lint build test

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/deploybot

# Everything, including the end-to-end tests against real InspIRCd + Anope
# and sshd hosts (needs root and the packages of scripts/install-deps.sh).
test:
	CGO_ENABLED=0 $(GO) test -count=1 -timeout $(TIMEOUT) ./...

# Unit tests only: no servers, no root.
test-short:
	CGO_ENABLED=0 $(GO) test -short -count=1 -timeout $(TIMEOUT) ./...

# gofmt, go vet, and shellcheck on the shell code run on targets (the
# fragments deployer/remote embeds).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v shellcheck >/dev/null || { echo "lint: shellcheck is not installed (see scripts/install-deps.sh)"; exit 1; }
	shellcheck deployer/remote/scripts/*.sh

bench:
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./...

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
demo: deps build
	CGO_ENABLED=0 $(GO) run ./cmd/deploybot-sandbox -c examples/sandbox.yaml -bin $(BIN)

deps:
	scripts/install-deps.sh

clean:
	rm -rf bin examples/sandbox-data
	$(GO) clean -testcache
