#!/usr/bin/env bash
# Installs the servers deploybot's tests and demo run on loopback:
# InspIRCd + Anope (IRC with SASL and account-tag), OpenSSH (fleet hosts),
# git, make, iproute2 (per-host network namespaces), util-linux (unshare),
# PostgreSQL (the shared SAL store), Chromium (the SAL page test),
# shellcheck (make lint) and stress-ng (tests under load).
#
# Idempotent: it runs `apt-get update` and `apt-get install` only when a
# package is missing. Needs root (or sudo) and Debian/Ubuntu.
set -euo pipefail

packages=(make inspircd anope openssh-server git iproute2 util-linux ca-certificates postgresql chromium pssh ansible shellcheck stress-ng)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all present (${packages[*]})"
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
