#!/usr/bin/env bash
# Builds convoy's container images without a Docker engine and without pulling any image:
#   manager       the controllers (module root), entrypoint /manager
#   convoy-drain  the PreStop helper (./cmd/convoy-drain), entrypoint /convoy-drain
# Each image is one layer holding one static binary (CGO_ENABLED=0, -trimpath, -s -w, stamped
# with VERSION) on an empty base: no shell, no /etc/passwd, no CA bundle; User 65532:65532.
# No CA bundle because the manager trusts only the CAs it is given: the service account's for
# the manager cluster, certificate-authority-data for service clusters (a kubeconfig without it
# would fall back to system roots, and fail here). The manager embeds the time zone database
# (-tags timetzdata): Kubernetes' CronJob validation loads spec.timeZone, and the image has no
# /usr/share/zoneinfo.
#
# Usage: hack/image.sh [--push REGISTRY] [manager|drain|all]   (default: all)
#
#   --push REGISTRY   also push to REGISTRY/convoy:VERSION and REGISTRY/convoy-drain:VERSION,
#                     e.g. --push ghcr.io/convoy-dev (log in first: crane auth login ghcr.io);
#                     a loopback registry (localhost:PORT, 127.0.0.1:PORT) is spoken to over http.
#
# Output: OCI image layouts bin/images/manager and bin/images/convoy-drain. Stdout gets one line
# per image, "<name> <digest> <layout>", plus "<name> <reference>@<digest>" per push; progress
# and errors go to stderr.
#
# Environment:
#   VERSION            version stamped into the binaries (default: git describe --tags --always --dirty)
#   SOURCE_DATE_EPOCH  file times in the layer, the config's created time (default: commit time of HEAD)
#   PLATFORMS          comma-separated, e.g. linux/amd64,linux/arm64 (default: linux/<go env GOARCH>);
#                      more than one makes each image an index
#   CRANE_VERSION      go-containerregistry's crane (default v0.22.1)
#   IMAGE_DIR          where the layouts go (default bin/images)
#
# How: go build; a tar of the binary with fixed owner (0:0), mode (0755) and time
# (SOURCE_DATE_EPOCH); then crane against a throwaway loopback registry that this script
# starts (crane registry serve on 127.0.0.1, on disk in a temporary directory) and stops:
# `crane append --oci-empty-base` (the empty base is made locally, nothing is pulled),
# `crane mutate` (entrypoint, user, platform, labels), `crane edit config` (created times set to
# SOURCE_DATE_EPOCH), `crane pull --format=oci`. crane comes from the Go module proxy and is
# cached per version under ${XDG_CACHE_HOME:-$HOME/.cache}/convoy/crane-<version>. The same
# commit, VERSION, Go toolchain and crane version give the same digest, wherever the checkout is.
#
# Every build checks itself: the layout holds the digest, the config says User 65532:65532 and
# Entrypoint [/<binary>] and no Cmd, the layer holds the binary and nothing else, the binary is
# static and built for the platform, and (for the platform of this machine) running it prints
# VERSION: `manager --version`, `convoy-drain version`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

MODULE=github.com/convoy-dev/convoy
SOURCE_URL=https://github.com/convoy-dev/convoy
CRANE_VERSION="${CRANE_VERSION:-v0.22.1}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/convoy"
IMAGE_DIR="${IMAGE_DIR:-$ROOT/bin/images}"
USER_ID=65532:65532

log() { echo "[image] $*" >&2; }
die() {
  echo "[image] error: $*" >&2
  exit 1
}
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

# --- arguments ---------------------------------------------------------------------------

push=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --push)
      [ -n "${2:-}" ] || die "--push needs a registry and repository prefix, e.g. --push ghcr.io/convoy-dev"
      push="${2%/}"
      shift 2
      ;;
    --push=*)
      push="${1#--push=}"
      push="${push%/}"
      [ -n "$push" ] || die "--push needs a registry and repository prefix, e.g. --push ghcr.io/convoy-dev"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    manager | drain | convoy-drain | all)
      targets+=("$1")
      shift
      ;;
    *) die "unknown argument '$1' (usage: hack/image.sh [--push REGISTRY] [manager|drain|all])" ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(all)
images=()
for t in "${targets[@]}"; do
  case "$t" in
    manager) images+=(manager) ;;
    drain | convoy-drain) images+=(convoy-drain) ;;
    all) images+=(manager convoy-drain) ;;
  esac
done
# De-duplicate, keeping the order.
mapfile -t images < <(printf '%s\n' "${images[@]}" | awk '!seen[$0]++')

# Per image: package, binary (also the entrypoint /<binary>), build tags, the arguments that
# print the version, and the repository name it is pushed under.
image_pkg() { case "$1" in manager) echo . ;; convoy-drain) echo ./cmd/convoy-drain ;; esac }
image_bin() { case "$1" in manager) echo manager ;; convoy-drain) echo convoy-drain ;; esac }
# The manager runs Kubernetes' own validation, which loads CronJob time zones
# (time.LoadLocation): with no /usr/share/zoneinfo in the image, the Go binary embeds them.
image_tags() { case "$1" in manager) echo timetzdata ;; convoy-drain) echo "" ;; esac }
image_version_args() { case "$1" in manager) echo --version ;; convoy-drain) echo version ;; esac }
image_repo() { case "$1" in manager) echo convoy ;; convoy-drain) echo convoy-drain ;; esac }

# --- prerequisites -------------------------------------------------------------------------

command -v go >/dev/null || die "go is not on PATH"
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is needed (for --sort, --mtime, --owner); on macOS: brew install gnu-tar and put gtar first on PATH as tar"

if [ -z "${VERSION:-}" ]; then
  VERSION="$(git describe --tags --always --dirty 2>/dev/null || echo devel)"
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  if ! SOURCE_DATE_EPOCH="$(git log -1 --format=%ct HEAD 2>/dev/null)"; then
    log "not a git checkout: SOURCE_DATE_EPOCH defaults to 0 (set it, and VERSION, for a release)"
    SOURCE_DATE_EPOCH=0
  fi
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be seconds since 1970, not '$SOURCE_DATE_EPOCH'"
REVISION="$(git rev-parse HEAD 2>/dev/null || true)"
CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
if [ -n "$push" ]; then
  [[ "$VERSION" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "VERSION '$VERSION' is not a valid image tag"
  case "$VERSION" in *dirty* | devel*) log "warning: pushing a build of uncommitted or unversioned sources as tag $VERSION" ;; esac
fi

HOST_PLATFORM="$(go env GOHOSTOS)/$(go env GOHOSTARCH)"
PLATFORMS="${PLATFORMS:-linux/$(go env GOARCH)}"
IFS=, read -r -a platforms <<<"$PLATFORMS"
for p in "${platforms[@]}"; do
  [[ "$p" =~ ^linux/[a-z0-9]+(/v[0-9]+)?$ ]] || die "platform '$p' is not linux/<arch>[/<variant>], e.g. linux/amd64"
done

# --- crane ---------------------------------------------------------------------------------

ensure_crane() {
  local dir="$CACHE_ROOT/crane-$CRANE_VERSION" tmp
  CRANE="$dir/crane"
  if [ -x "$CRANE" ]; then
    log "using crane $CRANE_VERSION from $dir"
    return
  fi
  log "installing crane $CRANE_VERSION from the Go module proxy into $dir (once per version; about 2 minutes on 2 cores)"
  mkdir -p "$CACHE_ROOT"
  tmp="$(mktemp -d "$dir.XXXXXX")"
  # A caller's GOOS/GOARCH (cross builds) must not apply to the tool itself.
  if ! env -u GOOS -u GOARCH GOBIN="$tmp" GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" >&2; then
    rm -rf "$tmp"
    die "go install github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION failed"
  fi
  # Another run may have installed it meanwhile; either copy is the same.
  mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  [ -x "$CRANE" ] || die "crane is missing from $dir after the install"
}

# crane quietly, its log shown only when it fails.
crane_q() {
  if ! "$CRANE" "$@" 2>"$WORK/crane.log"; then
    cat "$WORK/crane.log" >&2
    die "crane $1 failed"
  fi
}

# --- loopback registry ---------------------------------------------------------------------

WORK=""
REGISTRY_PID=""
cleanup() {
  if [ -n "$REGISTRY_PID" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  [ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_registry() {
  local port=""
  mkdir -p "$WORK/registry"
  "$CRANE" registry serve --address 127.0.0.1:0 --disk "$WORK/registry" 2>"$WORK/registry.log" &
  REGISTRY_PID=$!
  for _ in $(seq 1 100); do
    port="$(sed -n 's/.*serving on port \([0-9][0-9]*\).*/\1/p' "$WORK/registry.log")"
    [ -z "$port" ] || break
    kill -0 "$REGISTRY_PID" 2>/dev/null || die "the loopback registry exited: $(cat "$WORK/registry.log")"
    sleep 0.1
  done
  [ -n "$port" ] || die "the loopback registry did not start within 10s: $(cat "$WORK/registry.log")"
  REG="127.0.0.1:$port"
  log "loopback registry on $REG (pid $REGISTRY_PID)"
}

# --- build ---------------------------------------------------------------------------------

# build_platform NAME PLATFORM: the binary, its layer and the image for one platform; prints
# the image's reference in the loopback registry.
build_platform() {
  local name="$1" platform="$2" bin pkg tags os arch variant dir
  bin="$(image_bin "$name")"
  pkg="$(image_pkg "$name")"
  tags="$(image_tags "$name")"
  IFS=/ read -r os arch variant <<<"$platform"
  dir="$WORK/$name/${platform//\//-}"
  mkdir -p "$dir/root"

  local goenv=(CGO_ENABLED=0 GOOS="$os" GOARCH="$arch")
  case "$arch/$variant" in
    arm/v*) goenv+=(GOARM="${variant#v}") ;;
    */) ;;
    *) die "platform variant '$variant' is only supported for arm (GOARM)" ;;
  esac
  local build=(go build -trimpath -buildvcs=false -ldflags "-s -w -X $MODULE/internal/version.Version=$VERSION")
  [ -z "$tags" ] || build+=(-tags "$tags")
  log "$name $platform: go build ${pkg}${tags:+ (tags $tags)}"
  env "${goenv[@]}" "${build[@]}" -o "$dir/root/$bin" "$pkg" || die "go build of $pkg for $platform failed"
  chmod 0755 "$dir/root/$bin"

  # The layer: the binary alone, its owner, mode and time fixed so that the bytes depend only
  # on the binary and SOURCE_DATE_EPOCH.
  tar --create --file "$dir/layer.tar" --directory "$dir/root" --format=ustar --sort=name \
    --owner=0 --group=0 --numeric-owner --mode=0755 --mtime="@$SOURCE_DATE_EPOCH" "$bin"

  local repo tag="${platform//\//-}"
  repo="$REG/$(image_repo "$name")"
  local labels=(-l "org.opencontainers.image.source=$SOURCE_URL" -l "org.opencontainers.image.version=$VERSION"
    -l "org.opencontainers.image.created=$CREATED" -l "org.opencontainers.image.licenses=Apache-2.0")
  [ -z "$REVISION" ] || labels+=(-l "org.opencontainers.image.revision=$REVISION")
  crane_q append --oci-empty-base --new_layer "$dir/layer.tar" --new_tag "$repo:$tag-layer" >/dev/null
  crane_q mutate "$repo:$tag-layer" --entrypoint "/$bin" --user "$USER_ID" --set-platform "$platform" \
    "${labels[@]}" --tag "$repo:$tag-config" >/dev/null
  # crane leaves the config's created times at the zero time; they become SOURCE_DATE_EPOCH.
  local cfg
  cfg="$("$CRANE" config "$repo:$tag-config" 2>"$WORK/crane.log")" || { cat "$WORK/crane.log" >&2; die "$name $platform: cannot read the image config"; }
  crane_q edit config --tag "$repo:$tag" "$repo:$tag-config" <<<"${cfg//\"0001-01-01T00:00:00Z\"/\"$CREATED\"}" >/dev/null
  echo "$repo:$tag"
}

# check_platform NAME PLATFORM REF: the image for PLATFORM in REF is what it should be.
check_platform() {
  local name="$1" platform="$2" ref="$3" bin args cfg files out dir
  bin="$(image_bin "$name")"
  args="$(image_version_args "$name")"
  dir="$WORK/$name/check-${platform//\//-}"
  mkdir -p "$dir"

  cfg="$("$CRANE" config --platform "$platform" "$ref" 2>"$WORK/crane.log")" || { cat "$WORK/crane.log" >&2; die "$name $platform: cannot read the image config"; }
  grep -qF "\"User\":\"$USER_ID\"" <<<"$cfg" || die "$name $platform: config User is not $USER_ID: $cfg"
  grep -qF "\"Entrypoint\":[\"/$bin\"]" <<<"$cfg" || die "$name $platform: config Entrypoint is not [\"/$bin\"]: $cfg"
  ! grep -qF '"Cmd":' <<<"$cfg" || die "$name $platform: config has a Cmd: $cfg"
  grep -qF "\"created\":\"$CREATED\"" <<<"$cfg" || die "$name $platform: config created is not $CREATED: $cfg"
  if ! grep -qF "\"os\":\"${platform%%/*}\"" <<<"$cfg" || ! grep -qF "\"architecture\":\"$(cut -d/ -f2 <<<"$platform")\"" <<<"$cfg"; then
    die "$name $platform: config os/architecture do not match: $cfg"
  fi

  crane_q export --platform "$platform" "$ref" "$dir/fs.tar"
  files="$(tar -tf "$dir/fs.tar" | tr '\n' ' ')"
  [ "$files" = "$bin " ] || die "$name $platform: the image should hold only $bin, it holds: $files"
  tar -xf "$dir/fs.tar" -C "$dir" "$bin"

  # Static, trimmed, for the right platform: the build settings the binary records (with
  # -trimpath they leave out -ldflags; running the binary below checks the version stamp).
  out="$(go version -m "$dir/$bin")" || die "$name $platform: go version -m cannot read the binary"
  for want in "CGO_ENABLED=0" "-trimpath=true" "GOOS=${platform%%/*}" "GOARCH=$(cut -d/ -f2 <<<"$platform")"; do
    grep -qF -- "$want" <<<"$out" || die "$name $platform: the binary's build settings lack $want:"$'\n'"$out"
  done

  if [ "$platform" != "$HOST_PLATFORM" ]; then
    log "$name $platform: config, layer and build settings checked (not run: this machine is $HOST_PLATFORM)"
    return
  fi
  # Run it with an empty environment, as the image's user when this script runs as root:
  # convoy-drain also writes to the stdout of PID 1, which only root (or PID 1's owner) may open.
  local run=(env -i)
  if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null; then
      chmod 0755 "$WORK" "$WORK/$name" "$dir"
      run=(setpriv --reuid="${USER_ID%%:*}" --regid="${USER_ID##*:}" --clear-groups env -i)
    else
      log "$name $platform: running as root without setpriv: version output not checked by running the binary"
      return
    fi
  fi
  out="$("${run[@]}" "$dir/$bin" "$args" 2>&1)" || die "$name $platform: '$bin $args' failed: $out"
  [ "$out" = "$VERSION" ] || die "$name $platform: '$bin $args' printed '$out', want '$VERSION'"
  log "$name $platform: config, layer and build settings checked; '$bin $args' printed $out"
}

build_image() {
  local name="$1" start=$SECONDS refs=() ref p digest layout tmp
  for p in "${platforms[@]}"; do
    refs+=("$(build_platform "$name" "$p")")
  done
  if [ ${#refs[@]} -eq 1 ]; then
    ref="${refs[0]}"
  else
    ref="$REG/$(image_repo "$name"):index"
    local ms=()
    for p in "${refs[@]}"; do ms+=(-m "$p"); done
    crane_q index append "${ms[@]}" --tag "$ref" >/dev/null
  fi
  digest="$("$CRANE" digest "$ref" 2>"$WORK/crane.log")" || { cat "$WORK/crane.log" >&2; die "$name: cannot read the digest"; }
  ref="${ref%:*}@$digest"

  # The OCI layout, written next to its final place and moved there when complete.
  layout="$IMAGE_DIR/$name"
  mkdir -p "$IMAGE_DIR"
  tmp="$(mktemp -d "$layout.tmp.XXXXXX")"
  crane_q pull --format=oci "$ref" "$tmp"
  if [ "sha256:$(sha256sum "$tmp/blobs/sha256/${digest#sha256:}" | cut -d' ' -f1)" != "$digest" ] ||
    ! grep -qF "\"$digest\"" "$tmp/index.json"; then
    die "$name: the layout in $tmp does not hold $digest"
  fi
  chmod -R a+rX "$tmp"
  rm -rf "$layout"
  mv "$tmp" "$layout"

  for p in "${platforms[@]}"; do
    check_platform "$name" "$p" "$ref"
  done
  log "$name: $digest in ${layout#"$ROOT"/} ($((SECONDS - start))s)"
  echo "$name $digest ${layout#"$ROOT"/}"

  if [ -n "$push" ]; then
    local target pushed
    target="$push/$(image_repo "$name"):$VERSION"
    log "$name: pushing to $target"
    pushed="$("$CRANE" push "$layout" "$target" 2>"$WORK/crane.log")" || { cat "$WORK/crane.log" >&2; die "$name: push to $target failed"; }
    [ "${pushed##*@}" = "$digest" ] || die "$name: the registry reports ${pushed##*@} for $target, built $digest"
    echo "$name $target@$digest"
  fi
}

start=$SECONDS
log "VERSION=$VERSION SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH ($CREATED) PLATFORMS=$PLATFORMS $(go env GOVERSION)"
ensure_crane
WORK="$(mktemp -d "${TMPDIR:-/tmp}/convoy-image.XXXXXX")"
start_registry
for name in "${images[@]}"; do
  build_image "$name"
done
log "done in $((SECONDS - start))s"
