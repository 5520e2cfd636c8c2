#!/usr/bin/env bash
# Checks deploy/: renders the kustomize overlays, decodes them strictly into
# Kubernetes API types, validates their gslb configs with `gslb check`, and
# reads the Dockerfile and the systemd unit. deploy/ is its own Go module, so
# the repository's `go test ./...` does not enter it; this script does.
# Set GSLB_BIN to a built gslb binary to skip building one.
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off
exec go test -count=1 "$@" ./...
