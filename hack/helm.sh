#!/usr/bin/env bash
# Installs a pinned helm from the Go module proxy and caches it per version.
#
# The helm release download host is not reachable from our build machines, so helm is
# compiled with `go install helm.sh/helm/v3/cmd/helm@<version>` into
# ${XDG_CACHE_HOME:-$HOME/.cache}/convoy/helm-<version>/ and reused from there afterwards.
# A cold install compiles helm and its dependencies (a few minutes on 2 cores).
#
# Usage: hack/helm.sh
# Prints the path of the helm binary on its last line of stdout. Progress goes to stderr.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/convoy"
BIN_DIR="${CACHE_ROOT}/helm-${HELM_VERSION}"
HELM_BIN="${BIN_DIR}/helm"

log() { echo "[helm] $*" >&2; }

case "$HELM_VERSION" in
  v3.*) module="helm.sh/helm/v3" ;;
  v4.*) module="helm.sh/helm/v4" ;;
  *) log "unsupported HELM_VERSION ${HELM_VERSION} (want v3.x or v4.x)"; exit 2 ;;
esac

# Bump when the way helm is built changes, so that cached binaries from an older recipe are
# rebuilt.
RECIPE="2"

if [ -x "$HELM_BIN" ] && [ "$(cat "${BIN_DIR}/recipe" 2>/dev/null)" = "$RECIPE" ]; then
  log "helm ${HELM_VERSION}: cached in ${BIN_DIR}"
  echo "$HELM_BIN"
  exit 0
fi

mkdir -p "$BIN_DIR"
start=$(date +%s)
log "building helm ${HELM_VERSION} from the Go module proxy (first build takes a few minutes)"
# Build outside of any workspace, vendor or module settings of the caller, into a temporary
# GOBIN so that an interrupted build never leaves a half-written binary in the cache.
gobuild_env=(env GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0)
tmp="$(mktemp -d "${BIN_DIR}/.install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Helm's release builds stamp the Kubernetes version its client-go speaks (client-go
# v0.Y.Z -> 1.Y): `helm template` and `helm lint` use it as .Capabilities.KubeVersion and for
# deprecation checks. Without it they assume Kubernetes 1.20. (These are helm v3's package
# paths; check them before moving to v4, where the linker would ignore stale ones silently.)
mod_file="$(cd "$tmp" && "${gobuild_env[@]}" go mod download -json "${module}@${HELM_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
[ -f "$mod_file" ] || { log "cannot find go.mod of ${module}@${HELM_VERSION}"; exit 1; }
client_go="$(sed -n 's#^[[:space:]]*k8s\.io/client-go[[:space:]]\{1,\}v\([0-9.]*\).*#\1#p' "$mod_file" | head -n 1)"
[ -n "$client_go" ] || { log "cannot find the k8s.io/client-go version in ${mod_file}"; exit 1; }
k8s_major=$(( ${client_go%%.*} + 1 ))
k8s_minor="${client_go#*.}"; k8s_minor="${k8s_minor%%.*}"
log "helm ${HELM_VERSION} uses client-go v${client_go}: default Kubernetes version ${k8s_major}.${k8s_minor}"

ldflags="-s -w -X ${module}/internal/version.version=${HELM_VERSION} -X ${module}/internal/version.gitTreeState=clean"
for pkg in pkg/chartutil pkg/lint/rules; do
  ldflags+=" -X ${module}/${pkg}.k8sVersionMajor=${k8s_major} -X ${module}/${pkg}.k8sVersionMinor=${k8s_minor}"
done
(cd "$tmp" && "${gobuild_env[@]}" GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "${module}/cmd/helm@${HELM_VERSION}" >&2)
"$tmp/helm" version --short >&2
mv "$tmp/helm" "$HELM_BIN"
echo "$RECIPE" >"${BIN_DIR}/recipe"
log "helm ${HELM_VERSION}: built in $(( $(date +%s) - start ))s"
echo "$HELM_BIN"
