#!/usr/bin/env bash
# Builds Kubernetes test binaries from the Go module proxy and caches them per version.
#
# The usual envtest download host is not reachable from our build machines, so we compile
# kube-apiserver (and friends) from k8s.io/kubernetes through a throwaway wrapper module that
# replaces every k8s.io staging module with its published v0.Y.Z tag, and etcd from
# go.etcd.io/etcd/server/v3. Version ldflags are set so /version reports the real version:
# convoy's capability discovery depends on it.
#
# Usage: hack/k8s-binaries.sh [component...]   (default: kube-apiserver etcd)
# Prints the directory holding the binaries on its last line of stdout (usable as
# KUBEBUILDER_ASSETS). Progress goes to stderr.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/convoy"
BIN_DIR="${CACHE_ROOT}/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver etcd)

log() { echo "[k8s-binaries] $*" >&2; }

# Run the Go toolchain outside of any workspace or vendor settings of the caller.
gobuild_env=(env GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0)

build_kube() {
  local component="$1" work mod_file minor
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "building ${component} ${KUBE_VERSION} (first build takes several minutes on 2 cores)"
  mod_file="$(cd "$work" && "${gobuild_env[@]}" go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [ -f "$mod_file" ] || { log "cannot find go.mod of k8s.io/kubernetes@${KUBE_VERSION}"; return 1; }
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local staging_version="v0.${KUBE_VERSION#v1.}"
  {
    echo "module convoy.dev/k8s-binaries-wrapper"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    # Every "k8s.io/x => ./staging/src/k8s.io/x" becomes "k8s.io/x => k8s.io/x v0.Y.Z".
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#replace \1 => \1 '"${staging_version}"'#p' "$mod_file"
  } >"$work/go.mod"
  printf 'package wrapper\n\nimport _ "k8s.io/kubernetes/cmd/%s"\n' "$component" >"$work/tools.go"
  log "resolving modules for ${component}"
  (cd "$work" && "${gobuild_env[@]}" go mod tidy >&2)
  local pkg="k8s.io/component-base/version"
  local ldflags="-s -w -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
  ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  # client-go carries its own copy of the version for kubectl's client side.
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
  log "compiling ${component}"
  (cd "$work" && "${gobuild_env[@]}" go build -trimpath -ldflags "$ldflags" -o "${BIN_DIR}/${component}.tmp" "k8s.io/kubernetes/cmd/${component}")
  mv "${BIN_DIR}/${component}.tmp" "${BIN_DIR}/${component}"
}

build_etcd() {
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "building etcd ${ETCD_VERSION}"
  printf 'module convoy.dev/etcd-wrapper\n\ngo 1.25\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/go.mod"
  printf 'package wrapper\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$work/tools.go"
  (cd "$work" && "${gobuild_env[@]}" go mod tidy >&2)
  (cd "$work" && "${gobuild_env[@]}" go build -trimpath -ldflags "-s -w" -o "${BIN_DIR}/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "${BIN_DIR}/etcd.tmp" "${BIN_DIR}/etcd"
}

# kwok and kwokctl (the local fleet of `make demo`) come from sigs.k8s.io/kwok, whose go.mod
# has no replace directives, so a plain wrapper module builds them.
build_kwok() {
  local component="$1" work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "building ${component} ${KWOK_VERSION}"
  printf 'module convoy.dev/kwok-wrapper\n\ngo 1.26\n\nrequire sigs.k8s.io/kwok %s\n' "$KWOK_VERSION" >"$work/go.mod"
  printf 'package wrapper\n\nimport _ "sigs.k8s.io/kwok/cmd/%s"\n' "$component" >"$work/tools.go"
  (cd "$work" && "${gobuild_env[@]}" go mod tidy >&2)
  (cd "$work" && "${gobuild_env[@]}" go build -trimpath -ldflags "-s -w" -o "${BIN_DIR}/${component}.tmp" "sigs.k8s.io/kwok/cmd/${component}")
  mv "${BIN_DIR}/${component}.tmp" "${BIN_DIR}/${component}"
  echo "$KWOK_VERSION" >"${BIN_DIR}/${component}.version"
}

# The directory is named after the Kubernetes and etcd versions; kwok's version is recorded
# next to its binaries so that a changed KWOK_VERSION rebuilds them.
cached() {
  local c="$1"
  [ -x "${BIN_DIR}/${c}" ] || return 1
  case "$c" in
    kwok|kwokctl) [ "$(cat "${BIN_DIR}/${c}.version" 2>/dev/null)" = "$KWOK_VERSION" ] ;;
  esac
}

mkdir -p "$BIN_DIR"
for c in "${components[@]}"; do
  if cached "$c"; then
    log "${c}: cached in ${BIN_DIR}"
    continue
  fi
  start=$(date +%s)
  case "$c" in
    etcd) build_etcd ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) build_kube "$c" ;;
    kwok|kwokctl) build_kwok "$c" ;;
    *) log "unknown component $c"; exit 2 ;;
  esac
  log "${c}: built in $(( $(date +%s) - start ))s"
done
echo "$BIN_DIR"
