#!/usr/bin/env bash
# A local fleet for convoy: a manager cluster and three service clusters, each a real
# kube-apiserver + etcd + kube-controller-manager + kube-scheduler with kwok playing the
# kubelets of fake nodes labelled with regions and zones. No Docker: kwokctl's binary runtime
# runs the processes directly; every binary is built from the Go module proxy and cached.
#
#   hack/fleet.sh up               start (or resume) the fleet and convoy, apply the samples, wait
#   hack/fleet.sh down             stop everything started here and remove its state
#   hack/fleet.sh summary          print the per-cluster summary again
#   hack/fleet.sh manager-restart  rebuild convoy from the working tree and restart only it
#   hack/fleet.sh health           one line: Ready nodes and shop pods per cluster, sample Project
#
# Parameters (environment):
#   FLEET_DIR               state directory (default .fleet in the repository): kwok's own
#                           workdir (KWOK_WORKDIR, private to this fleet), kubeconfigs, the
#                           manager's log and pid. Fleets in different directories coexist.
#   FLEET_SERVICE_CLUSTERS  N >= 1: service clusters svc-1..svc-N instead of seoul-1, seoul-2
#                           and tokyo-1 (regions in turn, 3 zones, 6 nodes, Istio CRDs, env=prod)
#   FLEET_SAMPLES           0: do not apply config/samples nor wait for the sample Project
#   FLEET_MANAGER_FLAGS     extra flags for the convoy manager, after the defaults (so they
#                           override them); remembered in $FLEET_DIR/manager.flags for later
#                           `up` and `manager-restart` runs that do not set it
#   FLEET_ACCESS            join (default): register the service clusters with `convoy join`,
#                           as users do (least-privilege identity, accessScope ManagedNamespaces);
#                           admin: with their admin kubeconfigs and accessScope Cluster (the
#                           bench uses it: one watch per kind per cluster)
set -euo pipefail
cd "$(dirname "$0")/.."

FLEET_DIR="${FLEET_DIR:-$PWD/.fleet}"
case "$FLEET_DIR" in /*) ;; *) FLEET_DIR="$PWD/$FLEET_DIR" ;; esac
export KWOK_WORKDIR="$FLEET_DIR/kwok"
KUBECONFIGS="$FLEET_DIR/kubeconfig"
MARKER=.convoy-fleet
MANAGER=manager
FLEET_SAMPLES="${FLEET_SAMPLES:-1}"
FLEET_ACCESS="${FLEET_ACCESS:-join}"
# name region zones istio labels
if [ -z "${FLEET_SERVICE_CLUSTERS:-}" ]; then
  SERVICE_CLUSTERS=(
    "seoul-1 ap-northeast-2 ap-northeast-2a,ap-northeast-2b,ap-northeast-2c istio env=prod,stage=canary,topology.kubernetes.io/region=ap-northeast-2"
    "seoul-2 ap-northeast-2 ap-northeast-2a,ap-northeast-2b,ap-northeast-2c istio env=prod,topology.kubernetes.io/region=ap-northeast-2"
    "tokyo-1 ap-northeast-1 ap-northeast-1a,ap-northeast-1c,ap-northeast-1d no-istio env=prod,topology.kubernetes.io/region=ap-northeast-1"
  )
else
  if ! [[ "$FLEET_SERVICE_CLUSTERS" =~ ^[1-9][0-9]*$ ]]; then
    echo "FLEET_SERVICE_CLUSTERS must be a number >= 1, not '$FLEET_SERVICE_CLUSTERS'" >&2
    exit 2
  fi
  REGIONS=(
    "ap-northeast-2 ap-northeast-2a,ap-northeast-2b,ap-northeast-2c"
    "ap-northeast-1 ap-northeast-1a,ap-northeast-1c,ap-northeast-1d"
    "us-east-1 us-east-1a,us-east-1b,us-east-1c"
  )
  SERVICE_CLUSTERS=()
  for ((i = 1; i <= FLEET_SERVICE_CLUSTERS; i++)); do
    SERVICE_CLUSTERS+=("svc-$i ${REGIONS[(i - 1) % ${#REGIONS[@]}]} istio env=prod")
  done
fi
# Faster than the production defaults so that outages show within seconds.
# Metrics are served on a reserved loopback port, over HTTPS to authorized identities only,
# as in production (docs/operations.md).
MANAGER_FLAGS=(--health-probe-bind-address=0
  --cluster-probe-interval=3s --cluster-failure-threshold=2 --resync-period=1m)
# Fleets register here so that each one picks kwokctl ports no other fleet has recorded.
FLEETS_REGISTRY="${XDG_CACHE_HOME:-$HOME/.cache}/convoy/fleets"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }

binaries() {
  step "Kubernetes, etcd and kwok binaries (built from the Go module proxy once, then cached)"
  BIN="$(hack/k8s-binaries.sh kube-apiserver etcd kube-controller-manager kube-scheduler kubectl kwok kwokctl | tail -n 1)"
  mkdir -p "$FLEET_DIR/bin"
  for b in kubectl kwokctl; do ln -sf "$BIN/$b" "$FLEET_DIR/bin/$b"; done
  KWOKCTL="$BIN/kwokctl"
  KUBECTL="$BIN/kubectl"
  info "using $BIN"
}

kc() { local cluster="$1"; shift; "$KUBECTL" --kubeconfig "$KUBECONFIGS/$cluster.yaml" "$@"; }

# kwokctl starts etcd, kube-apiserver and friends as detached processes: they must not inherit
# the fleet lock (fd 9), or it would stay held after this script exits.
kwokctl() { "$KWOKCTL" "$@" 9>&-; }

# grep without -q reads all input: with pipefail, -q could fail the pipeline through SIGPIPE.
cluster_exists() { kwokctl get clusters 2>/dev/null | grep -x "$1" >/dev/null; }

# One hack/fleet.sh at a time per fleet.
lock_fleet() {
  exec 9>"$FLEET_DIR/.lock"
  flock -n 9 || {
    echo "another hack/fleet.sh is working on the fleet in $FLEET_DIR; wait for it to finish" >&2
    exit 1
  }
}

# Ports. kwokctl picks free ports by scanning down from 32767 and skips only the ports of the
# clusters in its own KWOK_WORKDIR: a fleet being created would take the ports of a cluster of
# another fleet while that cluster is stopped (an outage test), and two fleets created at once
# could pick the same ports. So every fleet registers under $FLEETS_REGISTRY, and picks its
# ports itself under a machine-wide lock, skipping every port that any registered fleet has
# recorded and every port something listens on.
fleet_key() { printf '%s' "$FLEET_DIR" | cksum | cut -d' ' -f1; }

register_fleet() {
  mkdir -p "$FLEETS_REGISTRY"
  echo "$FLEET_DIR" >"$FLEETS_REGISTRY/$(fleet_key)"
}

unregister_fleet() { rm -f "$FLEETS_REGISTRY/$(fleet_key)"; }

recorded_ports() {
  local entry dir
  for entry in "$FLEETS_REGISTRY"/*; do
    [ -f "$entry" ] || continue
    dir="$(cat "$entry")"
    [ -d "$dir" ] || continue
    cat "$dir"/ports/* 2>/dev/null | grep -x '[0-9]*' || true
    cat "$dir"/kwok/clusters/*/kwok.yaml 2>/dev/null | sed -n 's/^ *[A-Za-z]*Port: *\([0-9][0-9]*\) *$/\1/p'
  done
}

listening_ports() { ss -Hltn | awk '{print $4}' | sed 's/.*://'; }

# Writes $2 free ports to $FLEET_DIR/ports/$1, one per line, unless it exists.
pick_ports() {
  local name="$1" count="$2"
  [ -s "$FLEET_DIR/ports/$name" ] && return 0
  mkdir -p "$FLEET_DIR/ports" "$FLEETS_REGISTRY"
  (
    flock 8
    used=" $({ recorded_ports; listening_ports; } | sort -u | tr '\n' ' ') "
    picked=()
    for ((port = 29999; port > 20000 && ${#picked[@]} < count; port--)); do
      [[ "$used" == *" $port "* ]] || picked+=("$port")
    done
    [ ${#picked[@]} = "$count" ] || { echo "no $count free ports between 20000 and 29999" >&2; exit 1; }
    printf '%s\n' "${picked[@]}" >"$FLEET_DIR/ports/$name"
  ) 8>"$FLEETS_REGISTRY/.lock"
}

# Writes six free ports to $FLEET_DIR/ports/<cluster> and a kwokctl configuration using them.
reserve_ports() {
  local name="$1"
  rm -f "$FLEET_DIR/ports/$name"
  pick_ports "$name" 6
  local p
  mapfile -t p <"$FLEET_DIR/ports/$name"
  cat >"$FLEET_DIR/ports/$name.kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverPort: ${p[0]}
  etcdPort: ${p[1]}
  etcdPeerPort: ${p[2]}
  kwokControllerPort: ${p[3]}
  kubeControllerManagerPort: ${p[4]}
  kubeSchedulerPort: ${p[5]}
EOF
}

# Node heartbeats. kwokctl's defaults (heartbeat factor 5) give kwok-controller 200 s node
# leases renewed every 50 s, a Node status heartbeat only every 10 minutes (the
# node-heartbeat-with-lease stage) and kube-controller-manager a 200 s grace period. Leases do
# not survive a restart: kwok-controller's identity is random per process, so after
# `kwokctl start cluster` the new controller leaves every node and pod alone until the old
# leases expire (pods not Ready, namespaces stuck for minutes). So the fleet runs without
# leases, and says so to kwokctl itself (--node-lease-duration-seconds=0 on create): kwokctl
# then installs the lease-less node-heartbeat stage, which writes the Node status every
# 50-55 s, four times per 200 s grace period. (Passing the 0 to kwok-controller alone as an
# extra argument kept the 10-minute stage: every node went NotReady 200-225 s after each
# heartbeat, kube-controller-manager marked all pods Ready=False, and kwok's pod stages never
# set a Running pod Ready again.)
# kube-apiserver's default Service range (10.0.0.0/24) holds 254 Services: a bench with 1,000
# Projects needs a Service per Project per cluster, so the fleet widens it to a /16.
start_cluster() {
  local name="$1"
  if cluster_exists "$name"; then
    info "$name: exists, starting it (a no-op when it runs)"
    kwokctl start cluster --name "$name" >"$FLEET_DIR/logs/kwokctl-$name.log" 2>&1
  else
    info "$name: creating"
    reserve_ports "$name"
    kwokctl create cluster --name "$name" --runtime binary \
      --config "$FLEET_DIR/ports/$name.kwokctl.yaml" \
      --kubeconfig "$FLEET_DIR/kwok-kubeconfig.yaml" \
      --kube-apiserver-binary "$BIN/kube-apiserver" --etcd-binary "$BIN/etcd" \
      --kube-controller-manager-binary "$BIN/kube-controller-manager" \
      --kube-scheduler-binary "$BIN/kube-scheduler" --kwok-controller-binary "$BIN/kwok" \
      --node-lease-duration-seconds 0 \
      --extra-args kube-apiserver=service-cluster-ip-range=10.0.0.0/16 \
      --wait 120s >"$FLEET_DIR/logs/kwokctl-$name.log" 2>&1 || {
      tail -n 20 "$FLEET_DIR/logs/kwokctl-$name.log" >&2
      # A half-created cluster would be "resumed" by the next run; remove it instead.
      kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
      return 1
    }
  fi
  # Inline certificates: convoy refuses kubeconfigs that point at files.
  "$KUBECTL" config view --raw --flatten --minify \
    --kubeconfig "$KWOK_WORKDIR/clusters/$name/kubeconfig.yaml" >"$KUBECONFIGS/$name.yaml"
  chmod 600 "$KUBECONFIGS/$name.yaml"
}

fake_nodes() {
  local cluster="$1" region="$2" zones="$3" zone i kubelet
  # kwok reports its own version as the kubelet's unless told otherwise; real clusters report
  # the kubelet's, which convoy (like Istio) reads to decide native sidecars.
  kubelet="$(kc "$cluster" get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
  for zone in ${zones//,/ }; do
    for i in 1 2; do
      cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: ${zone}-node-${i}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels:
    type: kwok
    kubernetes.io/hostname: ${zone}-node-${i}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/region: ${region}
    topology.kubernetes.io/zone: ${zone}
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110"}
  capacity: {cpu: "16", memory: 64Gi, pods: "110"}
  nodeInfo: {kubeletVersion: "${kubelet}"}
EOF
    done
  done | kc "$cluster" apply -f - >/dev/null
}

# `convoy join`, as a user registers a cluster: a least-privilege identity in the service
# cluster, region and zones read from its nodes, the kubeconfig Secret and the ServiceCluster.
join_clusters() {
  go build -o "$FLEET_DIR/bin/convoy" ./cmd/convoy
  local entry name region zones istio labels
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name region zones istio labels <<<"$entry"
    "$FLEET_DIR/bin/convoy" join "$name" --kubeconfig "$KUBECONFIGS/$name.yaml" \
      --manager-kubeconfig "$KUBECONFIGS/$MANAGER.yaml" --labels "$labels" >"$FLEET_DIR/logs/join-$name.log" 2>&1 || {
      cat "$FLEET_DIR/logs/join-$name.log" >&2
      return 1
    }
    info "$name: joined (convoy join; log: $FLEET_DIR/logs/join-$name.log)"
  done
}

# Admin kubeconfigs and accessScope Cluster.
register_admin() {
  local entry name region zones istio labels
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name region zones istio labels <<<"$entry"
    kc "$MANAGER" create secret generic "$name-kubeconfig" -n convoy-system \
      --from-file=kubeconfig="$KUBECONFIGS/$name.yaml" --dry-run=client -o yaml | kc "$MANAGER" apply -f - >/dev/null
    service_cluster_yaml "$name" "$region" "$zones" "$labels"
  done | kc "$MANAGER" apply -f - >/dev/null
}

service_cluster_yaml() {
  local name="$1" region="$2" zones="$3" labels="$4"
  labels="${labels//=/: }"
  labels="${labels//,/, }"
  cat <<EOF
---
apiVersion: convoy.dev/v1alpha1
kind: ServiceCluster
metadata:
  name: ${name}
  labels: {${labels}}
spec:
  kubeconfigSecretRef: {namespace: convoy-system, name: ${name}-kubeconfig}
  region: ${region}
  zones: [${zones//,/, }]
EOF
}

# FLEET_MANAGER_FLAGS when set (even to nothing), else what the last run recorded.
manager_flags() {
  if [ -n "${FLEET_MANAGER_FLAGS+set}" ]; then
    printf '%s\n' "$FLEET_MANAGER_FLAGS" >"$FLEET_DIR/manager.flags"
  fi
  local extra=() line=""
  [ -f "$FLEET_DIR/manager.flags" ] && line="$(cat "$FLEET_DIR/manager.flags")"
  read -r -a extra <<<"$line"
  MANAGER_FLAGS+=("${extra[@]}")
}

start_manager() {
  step "convoy manager (out of cluster; log: $FLEET_DIR/manager.log)"
  manager_flags
  pick_ports manager-metrics 1
  MANAGER_FLAGS=("--metrics-bind-address=127.0.0.1:$(cat "$FLEET_DIR/ports/manager-metrics")" "${MANAGER_FLAGS[@]}")
  # Build before stopping the running manager: a tree that does not compile leaves it running.
  go build -o "$FLEET_DIR/bin/convoy-manager.new" .
  stop_manager
  mv "$FLEET_DIR/bin/convoy-manager.new" "$FLEET_DIR/bin/convoy-manager"
  KUBECONFIG="$KUBECONFIGS/$MANAGER.yaml" setsid nohup "$FLEET_DIR/bin/convoy-manager" "${MANAGER_FLAGS[@]}" \
    >"$FLEET_DIR/manager.log" 2>&1 </dev/null 9>&- &
  echo $! >"$FLEET_DIR/manager.pid"
  info "pid $(cat "$FLEET_DIR/manager.pid"), flags: ${MANAGER_FLAGS[*]}"
  sleep 2
  if ! kill -0 "$(cat "$FLEET_DIR/manager.pid")" 2>/dev/null; then
    tail -n 20 "$FLEET_DIR/manager.log" >&2
    echo "the convoy manager exited at once; see $FLEET_DIR/manager.log" >&2
    return 1
  fi
}

stop_manager() {
  local pid
  [ -f "$FLEET_DIR/manager.pid" ] || return 0
  pid="$(cat "$FLEET_DIR/manager.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true # it may have exited meanwhile
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$FLEET_DIR/manager.pid"
}

wait_for_project() {
  local ns="$1" name="$2" deadline=$((SECONDS + 240)) ready clusters reason
  step "Waiting for Project $ns/$name to converge in every cluster"
  while :; do
    ready="$(kc "$MANAGER" get project -n "$ns" "$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
    clusters="$(kc "$MANAGER" get project -n "$ns" "$name" -o jsonpath='{.status.readyClusters}' 2>/dev/null || true)"
    reason="$(kc "$MANAGER" get project -n "$ns" "$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null || true)"
    info "$(date +%T) ready clusters ${clusters:-?}  ${reason:0:110}"
    [ "$ready" = True ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      info "not converged after 240 s; see $FLEET_DIR/manager.log and: kubectl get project -n $ns $name -o yaml"
      return 1
    fi
    sleep 3
  done
}

# The Istio CRDs come from the istio.io/api module that go.mod pins. `go list -m` prints an
# empty directory for a module that is not in the module cache yet, so download it first.
istio_crds() {
  local dir file
  go mod download istio.io/api >&2 || true
  dir="$(go list -m -f '{{.Dir}}' istio.io/api 2>/dev/null || true)"
  file="$dir/kubernetes/customresourcedefinitions.gen.yaml"
  if [ -z "$dir" ] || [ ! -f "$file" ]; then
    echo "cannot find the Istio CRDs of istio.io/api (looked for '$file');" \
      "check that 'go mod download istio.io/api' works here (GOPROXY, network)" >&2
    return 1
  fi
  echo "$file"
}

# The fleet's shape is fixed when it is created: refuse to resume it with another one.
check_shape() {
  local want have
  want="$(for entry in "${SERVICE_CLUSTERS[@]}"; do echo "$entry"; done)"
  if [ -f "$FLEET_DIR/service-clusters" ]; then
    have="$(cat "$FLEET_DIR/service-clusters")"
    if [ "$have" != "$want" ]; then
      echo "the fleet in $FLEET_DIR has the service clusters" $(cut -d' ' -f1 <<<"$have") \
        "but this run asks for" $(cut -d' ' -f1 <<<"$want") "(FLEET_SERVICE_CLUSTERS);" \
        "remove it first (hack/fleet.sh down, with the same FLEET_DIR) or use another FLEET_DIR" >&2
      exit 1
    fi
  fi
  echo "$want" >"$FLEET_DIR/service-clusters"
}

up() {
  # FLEET_DIR comes from the environment: `down` removes it, so never adopt a directory that
  # holds something else.
  if [ -d "$FLEET_DIR" ] && [ ! -f "$FLEET_DIR/$MARKER" ] && [ -n "$(ls -A "$FLEET_DIR")" ]; then
    echo "$FLEET_DIR exists and was not created by $0 (no $MARKER); choose another FLEET_DIR" >&2
    exit 1
  fi
  mkdir -p "$FLEET_DIR/logs" "$KUBECONFIGS"
  touch "$FLEET_DIR/$MARKER"
  lock_fleet
  check_shape
  register_fleet
  binaries

  step "Clusters (kwokctl, binary runtime, KWOK_WORKDIR=$KWOK_WORKDIR)"
  start_cluster "$MANAGER"
  local entry name region zones istio labels
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name region zones istio labels <<<"$entry"
    start_cluster "$name"
  done

  step "Service clusters: fake nodes per zone, Istio CRDs (from the istio.io/api module)"
  local crds
  crds="$(istio_crds)"
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name region zones istio labels <<<"$entry"
    fake_nodes "$name" "$region" "$zones"
    if [ "$istio" = istio ]; then
      kc "$name" apply --server-side -f "$crds" >/dev/null
      info "$name: 6 nodes in ${zones//,/ }; Istio CRDs installed"
    else
      info "$name: 6 nodes in ${zones//,/ }; no Istio (convoy falls back to Service trafficDistribution)"
    fi
  done

  step "Manager cluster: convoy CRDs; service clusters registered (FLEET_ACCESS=$FLEET_ACCESS)"
  kc "$MANAGER" apply --server-side -k config/crd >/dev/null
  # kubectl wait fails instead of waiting on a CRD the API server has not given a status yet.
  local try
  for try in $(seq 30); do
    kc "$MANAGER" wait --for condition=established --timeout=60s crd --all >/dev/null 2>&1 && break
    [ "$try" -lt 30 ] || { kc "$MANAGER" wait --for condition=established --timeout=1s crd --all; return 1; }
    sleep 1
  done
  kc "$MANAGER" create namespace convoy-system --dry-run=client -o yaml | kc "$MANAGER" apply -f - >/dev/null
  case "$FLEET_ACCESS" in
    join) join_clusters ;;
    admin) register_admin ;;
    *) echo "FLEET_ACCESS must be join or admin, not $FLEET_ACCESS" >&2; exit 1 ;;
  esac

  start_manager

  if [ "$FLEET_SAMPLES" = 0 ]; then
    step "Samples skipped (FLEET_SAMPLES=0)"
  else
    step "Samples: GracefulShutdownPolicy, LocalityLoadBalancing, Secret, Project (config/samples)"
    kc "$MANAGER" apply -f config/samples/gracefulshutdownpolicy.yaml -f config/samples/gracefulshutdownpolicy-worker.yaml -f config/samples/localityloadbalancing.yaml -f config/samples/secret.yaml -f config/samples/rolloutstrategy.yaml >/dev/null
    kc "$MANAGER" apply --server-side -f config/samples/project.yaml >/dev/null
    wait_for_project default shop
    summary
  fi
  read -r name _ <<<"${SERVICE_CLUSTERS[0]}"
  cat >&2 <<EOF

Explore:
  export KUBECONFIG=$KUBECONFIGS/$MANAGER.yaml      # the manager cluster
  $FLEET_DIR/bin/kubectl get serviceclusters
  $FLEET_DIR/bin/kubectl get projects -o wide
  $FLEET_DIR/bin/kubectl get project shop -o yaml     # per-cluster status, pods per zone
  $FLEET_DIR/bin/kubectl --kubeconfig $KUBECONFIGS/$name.yaml get deploy,svc,destinationrules -n shop
  tail -f $FLEET_DIR/manager.log
  KWOK_WORKDIR=$KWOK_WORKDIR $FLEET_DIR/bin/kwokctl stop cluster --name $name   # an outage

Stop everything: FLEET_DIR=$FLEET_DIR hack/fleet.sh down   (make demo-down for the default fleet)
EOF
}

# One line of health: per service cluster the Ready nodes and the Ready pods in the sample
# Project's namespace, then the sample Project's Ready status and ready clusters. For soaks:
#   while sleep 30; do hack/fleet.sh health; done | tee soak.log
count_ready() { grep -c '^True$' || true; }
health() {
  if [ ! -f "$FLEET_DIR/$MARKER" ]; then
    echo "$(date +%FT%T) no fleet in $FLEET_DIR"
    return 1
  fi
  binaries >/dev/null 2>&1
  # The clusters the fleet was created with, whatever FLEET_SERVICE_CLUSTERS says now.
  [ -s "$FLEET_DIR/service-clusters" ] && mapfile -t SERVICE_CLUSTERS <"$FLEET_DIR/service-clusters"
  local entry name line nodes nodes_ready pods pods_ready ready clusters
  line="$(date +%FT%T)"
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name _ <<<"$entry"
    nodes="$(kc "$name" get nodes --request-timeout=10s \
      -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null)" || nodes="?"
    pods="$(kc "$name" get pods -n shop --request-timeout=10s \
      -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null)" || pods="?"
    if [ "$nodes" = "?" ]; then nodes_ready="?/?"; else nodes_ready="$(count_ready <<<"$nodes")/$(grep -c . <<<"$nodes" || true)"; fi
    if [ "$pods" = "?" ]; then pods_ready="?/?"; else pods_ready="$(count_ready <<<"$pods")/$(grep -c . <<<"$pods" || true)"; fi
    line+=" $name nodes=$nodes_ready pods=$pods_ready"
  done
  ready="$(kc "$MANAGER" get project -n default shop --request-timeout=10s -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}' 2>/dev/null)" || ready="?"
  clusters="$(kc "$MANAGER" get project -n default shop --request-timeout=10s -o jsonpath='{.status.readyClusters}' 2>/dev/null)" || clusters="?"
  echo "$line project=${ready:-?} readyClusters=${clusters:-?}"
}

# Rebuilds convoy from the working tree and restarts it; the clusters are left alone.
manager_restart() {
  if [ ! -f "$FLEET_DIR/$MARKER" ] || [ ! -f "$KUBECONFIGS/$MANAGER.yaml" ]; then
    echo "no fleet in $FLEET_DIR: start one with hack/fleet.sh up" >&2
    exit 1
  fi
  lock_fleet
  start_manager
}

summary() {
  step "Summary"
  go run ./hack/fleet-summary --fleet-dir "$FLEET_DIR" --manager "$MANAGER" --project default/shop
}

down() {
  if [ ! -d "$FLEET_DIR" ]; then
    info "no fleet at $FLEET_DIR"
    return 0
  fi
  # FLEET_DIR comes from the environment: only ever remove a directory this script made.
  if [ ! -f "$FLEET_DIR/$MARKER" ]; then
    echo "$FLEET_DIR was not created by $0 (no $MARKER); not touching it" >&2
    return 1
  fi
  lock_fleet
  binaries >/dev/null 2>&1
  step "Stopping the convoy manager"
  stop_manager
  step "Deleting the clusters"
  local name failed=0
  mkdir -p "$FLEET_DIR/logs"
  for name in $(kwokctl get clusters); do
    info "$name"
    kwokctl delete cluster --name "$name" >"$FLEET_DIR/logs/kwokctl-delete-$name.log" 2>&1 || {
      failed=1
      tail -n 5 "$FLEET_DIR/logs/kwokctl-delete-$name.log" >&2
    }
  done
  if [ "$failed" = 1 ]; then
    echo "some clusters could not be deleted; $FLEET_DIR is kept so that 'make demo-down' can retry" >&2
    return 1
  fi
  unregister_fleet
  rm -rf "$FLEET_DIR"
  info "removed $FLEET_DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  summary) summary ;;
  manager-restart) manager_restart ;;
  health) health ;;
  *) echo "usage: $0 up|down|summary|manager-restart|health" >&2; exit 2 ;;
esac
