#!/usr/bin/env bash
# Prints the path of a prometheus binary, installing Debian's package when none is on PATH.
#
# The integration test of internal/gate runs a real Prometheus. Debian's package is the
# quickest way to one on our build machines (the release download host is not reachable,
# and building Prometheus from source takes long). Installing needs root.
#
# Usage: hack/prometheus.sh
# Prints the path of the prometheus binary on stdout, nothing else. apt's output goes to
# stderr.
set -euo pipefail

log() { echo "[prometheus] $*" >&2; }

if path="$(command -v prometheus)"; then
  echo "$path"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "prometheus is not on PATH and installing the Debian package needs root: run hack/prometheus.sh as root, install prometheus yourself, or set PROMETHEUS=/path/to/prometheus for the tests"
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  log "prometheus is not on PATH and apt-get is missing: install prometheus yourself or set PROMETHEUS=/path/to/prometheus for the tests"
  exit 1
fi

log "installing the Debian package prometheus"
apt-get update >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >&2

if ! path="$(command -v prometheus)"; then
  log "the Debian package prometheus is installed but prometheus is not on PATH"
  exit 1
fi
echo "$path"
