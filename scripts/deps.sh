#!/usr/bin/env bash
# deps.sh: installs the Debian packages the build, the embedded stack and the tests need,
# only those missing, so a second run does nothing. Uses sudo when not run as root.
set -euo pipefail

pkgs=(make gcc libc6-dev pkg-config libfcgi-dev spawn-fcgi libpq-dev postgresql
      libcjson-dev libssl-dev libcrypt-dev libesmtp-dev libcmocka-dev libcurl4-openssl-dev
      python3 python3-pytest python3-aiosmtpd curl procps wrk systemd logrotate
      chromium chromium-driver python3-selenium)
missing=()
# The contract tests: the spec's YAML, its JSON Schema validation (tests/api/contract.py).
pkgs+=(python3-yaml python3-jsonschema)
# The metrics tests read /metrics with Prometheus' own exposition parser.
pkgs+=(python3-prometheus-client)
# The fuzz targets (make fuzz, tests/fuzz): clang and its runtime libraries (libFuzzer, the
# sanitizers).
pkgs+=(clang-14 libclang-rt-14-dev)
# The cluster (scripts/cluster.sh, make test-cluster): network namespaces, veth and a bridge.
pkgs+=(iproute2)
# A test holds a daemon at a chosen system call (tests/api/test_mailer_stop.py).
pkgs+=(strace)
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Any of Debian's nginx flavours will do.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# Node.js and npm for the contract tests' npm tools (tests/contract), Debian's or another's.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
