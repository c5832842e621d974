#!/usr/bin/env bash
# A local fleet for convoy: a manager cluster and three service clusters, each a real
# kube-apiserver + etcd + kube-controller-manager + kube-scheduler with kwok playing the
# kubelets of fake nodes labelled with regions and zones. No Docker: kwokctl's binary runtime
# runs the processes directly; every binary is built from the Go module proxy and cached.
#
#   hack/fleet.sh up       start (or resume) the fleet and convoy, apply the samples, wait
#   hack/fleet.sh down     stop everything started here and remove its state
#   hack/fleet.sh summary  print the per-cluster summary again
#
# Everything lives under $FLEET_DIR (default .fleet in the repository): kwok's own workdir
# (KWOK_WORKDIR, private to this fleet), kubeconfigs, the manager's log and pid.
set -euo pipefail
cd "$(dirname "$0")/.."

FLEET_DIR="${FLEET_DIR:-$PWD/.fleet}"
export KWOK_WORKDIR="$FLEET_DIR/kwok"
KUBECONFIGS="$FLEET_DIR/kubeconfig"
MARKER=.convoy-fleet
MANAGER=manager
# name region zones istio
SERVICE_CLUSTERS=(
  "seoul-1 ap-northeast-2 ap-northeast-2a,ap-northeast-2b,ap-northeast-2c istio"
  "seoul-2 ap-northeast-2 ap-northeast-2a,ap-northeast-2b,ap-northeast-2c istio"
  "tokyo-1 ap-northeast-1 ap-northeast-1a,ap-northeast-1c,ap-northeast-1d no-istio"
)
# Faster than the production defaults so that outages show within seconds.
MANAGER_FLAGS=(--metrics-bind-address=0 --health-probe-bind-address=0
  --cluster-probe-interval=3s --cluster-failure-threshold=2 --resync-period=1m)

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

# grep without -q reads all input: with pipefail, -q could fail the pipeline through SIGPIPE.
cluster_exists() { "$KWOKCTL" get clusters 2>/dev/null | grep -x "$1" >/dev/null; }

# kwokctl gives kwok-controller 200 s node leases: after `kwokctl start cluster` the new
# controller leaves pods alone until the old leases expire, so deletions hang for minutes.
# One controller per cluster needs no leases.
start_cluster() {
  local name="$1"
  if cluster_exists "$name"; then
    info "$name: exists, starting it (a no-op when it runs)"
    "$KWOKCTL" start cluster --name "$name" >"$FLEET_DIR/logs/kwokctl-$name.log" 2>&1
  else
    info "$name: creating"
    "$KWOKCTL" create cluster --name "$name" --runtime binary \
      --kubeconfig "$FLEET_DIR/kwok-kubeconfig.yaml" \
      --kube-apiserver-binary "$BIN/kube-apiserver" --etcd-binary "$BIN/etcd" \
      --kube-controller-manager-binary "$BIN/kube-controller-manager" \
      --kube-scheduler-binary "$BIN/kube-scheduler" --kwok-controller-binary "$BIN/kwok" \
      --extra-args kwok-controller=node-lease-duration-seconds=0 \
      --wait 120s >"$FLEET_DIR/logs/kwokctl-$name.log" 2>&1 || {
      tail -n 20 "$FLEET_DIR/logs/kwokctl-$name.log" >&2
      # A half-created cluster would be "resumed" by the next run; remove it instead.
      "$KWOKCTL" delete cluster --name "$name" >/dev/null 2>&1 || true
      return 1
    }
  fi
  # Inline certificates: convoy refuses kubeconfigs that point at files.
  "$KUBECTL" config view --raw --flatten --minify \
    --kubeconfig "$KWOK_WORKDIR/clusters/$name/kubeconfig.yaml" >"$KUBECONFIGS/$name.yaml"
  chmod 600 "$KUBECONFIGS/$name.yaml"
}

fake_nodes() {
  local cluster="$1" region="$2" zones="$3" zone i
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
EOF
    done
  done | kc "$cluster" apply -f - >/dev/null
}

service_cluster_yaml() {
  local name="$1" region="$2" zones="$3" labels="env: prod"
  [ "$name" = seoul-1 ] && labels="env: prod, stage: canary"
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

start_manager() {
  stop_manager
  step "convoy manager (out of cluster; log: $FLEET_DIR/manager.log)"
  go build -o "$FLEET_DIR/bin/convoy-manager" .
  KUBECONFIG="$KUBECONFIGS/$MANAGER.yaml" setsid nohup "$FLEET_DIR/bin/convoy-manager" "${MANAGER_FLAGS[@]}" \
    >"$FLEET_DIR/manager.log" 2>&1 </dev/null &
  echo $! >"$FLEET_DIR/manager.pid"
  info "pid $(cat "$FLEET_DIR/manager.pid")"
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

up() {
  mkdir -p "$FLEET_DIR/logs" "$KUBECONFIGS"
  touch "$FLEET_DIR/$MARKER"
  binaries

  step "Clusters (kwokctl, binary runtime, KWOK_WORKDIR=$KWOK_WORKDIR)"
  start_cluster "$MANAGER"
  local entry name region zones istio
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name region zones istio <<<"$entry"
    start_cluster "$name"
  done

  step "Service clusters: fake nodes per zone, Istio CRDs (from the istio.io/api module)"
  local istio_crds
  istio_crds="$(go list -m -f '{{.Dir}}' istio.io/api)/kubernetes/customresourcedefinitions.gen.yaml"
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name region zones istio <<<"$entry"
    fake_nodes "$name" "$region" "$zones"
    if [ "$istio" = istio ]; then
      kc "$name" apply --server-side -f "$istio_crds" >/dev/null
      info "$name: 6 nodes in ${zones//,/ }; Istio CRDs installed"
    else
      info "$name: 6 nodes in ${zones//,/ }; no Istio (convoy falls back to Service trafficDistribution)"
    fi
  done

  step "Manager cluster: convoy CRDs, kubeconfig Secrets, ServiceClusters"
  kc "$MANAGER" apply --server-side -k config/crd >/dev/null
  kc "$MANAGER" wait --for condition=established --timeout=60s crd --all >/dev/null
  kc "$MANAGER" create namespace convoy-system --dry-run=client -o yaml | kc "$MANAGER" apply -f - >/dev/null
  for entry in "${SERVICE_CLUSTERS[@]}"; do
    read -r name region zones istio <<<"$entry"
    kc "$MANAGER" create secret generic "$name-kubeconfig" -n convoy-system \
      --from-file=kubeconfig="$KUBECONFIGS/$name.yaml" --dry-run=client -o yaml | kc "$MANAGER" apply -f - >/dev/null
    service_cluster_yaml "$name" "$region" "$zones"
  done | kc "$MANAGER" apply -f - >/dev/null

  start_manager

  step "Samples: GracefulShutdownPolicy, LocalityLoadBalancing, Project (config/samples)"
  kc "$MANAGER" apply -f config/samples/gracefulshutdownpolicy.yaml -f config/samples/localityloadbalancing.yaml >/dev/null
  kc "$MANAGER" apply --server-side -f config/samples/project.yaml >/dev/null
  wait_for_project default shop
  summary
  cat >&2 <<EOF

Explore:
  export KUBECONFIG=$KUBECONFIGS/$MANAGER.yaml      # the manager cluster
  $FLEET_DIR/bin/kubectl get serviceclusters
  $FLEET_DIR/bin/kubectl get projects -o wide
  $FLEET_DIR/bin/kubectl get project shop -o yaml     # per-cluster status, pods per zone
  $FLEET_DIR/bin/kubectl --kubeconfig $KUBECONFIGS/seoul-1.yaml get deploy,svc,destinationrules -n shop
  tail -f $FLEET_DIR/manager.log
  KWOK_WORKDIR=$KWOK_WORKDIR $FLEET_DIR/bin/kwokctl stop cluster --name tokyo-1   # an outage

Stop everything: make demo-down
EOF
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
  binaries >/dev/null 2>&1
  step "Stopping the convoy manager"
  stop_manager
  step "Deleting the clusters"
  local name failed=0
  for name in $("$KWOKCTL" get clusters); do
    info "$name"
    "$KWOKCTL" delete cluster --name "$name" >"$FLEET_DIR/logs/kwokctl-delete-$name.log" 2>&1 || {
      failed=1
      tail -n 5 "$FLEET_DIR/logs/kwokctl-delete-$name.log" >&2
    }
  done
  if [ "$failed" = 1 ]; then
    echo "some clusters could not be deleted; $FLEET_DIR is kept so that 'make demo-down' can retry" >&2
    return 1
  fi
  rm -rf "$FLEET_DIR"
  info "removed $FLEET_DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  summary) binaries >/dev/null 2>&1; summary ;;
  *) echo "usage: $0 up|down|summary" >&2; exit 2 ;;
esac
