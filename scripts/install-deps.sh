#!/usr/bin/env bash
# Installs the servers deploybot's tests and demo run on loopback:
# InspIRCd + Anope (IRC with SASL and account-tag), OpenSSH (fleet hosts),
# git, make, iproute2 (per-host network namespaces), util-linux (unshare),
# PostgreSQL (the shared SAL store), Chromium (the SAL page test),
# Prometheus (the metrics test), pssh and Ansible (make bench compares
# deploybot with them), shellcheck (make lint), stress-ng (tests
# under load) and faketime (a fleet host with a skewed clock, in the fault
# suite).
#
# Idempotent: it runs `apt-get update` and `apt-get install` only when a
# package is missing. Needs root (or sudo) and Debian/Ubuntu.
#
# With --for-tests (what `make test` runs) it never asks for sudo: as root
# on Debian it installs what is missing; otherwise it fails, naming what is
# missing and how to get it, because the end-to-end tests need root and
# every one of these packages.
set -euo pipefail

packages=(make inspircd anope openssh-server git iproute2 util-linux ca-certificates postgresql chromium pssh shellcheck stress-ng prometheus faketime ansible)

for_tests=""
case "${1:-}" in
"") ;;
--for-tests) for_tests=1 ;;
*)
	echo "usage: $0 [--for-tests]" >&2
	exit 2
	;;
esac

# fail prints why `make test` cannot run here and how to fix it, and exits.
fail() {
	echo "make test: $1" >&2
	echo "  make test runs every end-to-end test against real servers and needs all of them;" >&2
	echo "  \`make test-short\` runs the unit tests only, without servers or root." >&2
	exit 1
}

if ! command -v dpkg-query >/dev/null; then
	if [ -n "$for_tests" ]; then
		fail "cannot check the packages (no dpkg-query: not Debian/Ubuntu); the tests need the Debian packages: ${packages[*]}"
	fi
	echo "install-deps: needs Debian/Ubuntu (dpkg, apt-get); the packages are: ${packages[*]}" >&2
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ -n "$for_tests" ] && [ "$(id -u)" -ne 0 ]; then
	what="the end-to-end tests need root (network namespaces, sshd, IRC and PostgreSQL servers): run \`sudo make test\`"
	if [ ${#missing[@]} -gt 0 ]; then
		what="$what; missing Debian packages: ${missing[*]} (\`sudo scripts/install-deps.sh\` installs them)"
	fi
	fail "$what"
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all present (${packages[*]})"
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"; }; then
	if [ -n "$for_tests" ]; then
		fail "could not install the missing Debian packages: ${missing[*]} (see apt-get's error above; retry with \`scripts/install-deps.sh\`)"
	fi
	exit 1
fi
