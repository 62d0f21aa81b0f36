#!/usr/bin/env bash
# Build LeadOps' container images here, without Docker or a registry, and save each
# one as an archive the real node's containerd imports (hack/node, tests/e2e):
#
#   base      Debian (IMAGE_DEBIAN_SUITE) minbase + python3, made by mmdebstrap from
#             Debian's packages; stands in for python:3.11-slim as PYTHON_IMAGE
#   scorer    Dockerfile.scorer on that base (buildah build, chroot isolation): serving only
#   jobs      Dockerfile.jobs on that base: training, evaluation, backfill, publishing
#   operator  Dockerfile.operator on that base
#   redis     Debian minbase + Debian's redis-server
#   pause     the Pod sandbox image: hack/node/pause.c, a static binary
#   prometheus           Prometheus, built from its Go module (build.sh monitoring), /bin/prometheus
#   prometheus-operator  the Prometheus Operator and its config reloader, built from Go
#             modules (hack/control-plane/build.sh monitoring), as /bin/operator and
#             /bin/prometheus-config-reloader (the path the operator's Pods run it from)
#
# Prints the archive directory on stdout (`build.sh --cached`: only if every archive is
# already there, else exit 1 and build nothing; `make demo` asks so). Cache: ${LEADOPS_CACHE_DIR:-~/.cache/leadops}/images/
# <hash>/ keyed by versions.env's IMAGE_ pins. The Debian root filesystems are made once
# per key; the project images are rebuilt by buildah's layer cache (a source edit
# re-runs only the last steps) and re-exported only when the image id changed.
#
# The host's CA bundle and pip config are mounted into the build's RUN steps (this
# machine's package mirrors may need them); they are never copied into an image.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
versions_file="$repo/hack/control-plane/versions.env"
# shellcheck source=../control-plane/versions.env
source "$versions_file"

log() { echo "images: $*" >&2; }
die() { echo "images: $*" >&2; exit 1; }
archives=(base pause redis scorer jobs operator prometheus prometheus-operator)

key=$(grep -E '^IMAGE_[A-Z_]+=' "$versions_file" | sort | sha256sum | cut -c1-16)
dest="${LEADOPS_CACHE_DIR:-$HOME/.cache/leadops}/images/$key"
if [[ ${1:-} == --cached ]]; then
  for name in "${archives[@]}"; do
    [[ -s $dest/$name.tar ]] || die "no $name image archive in $dest (make images)"
  done
  echo "$dest"
  exit 0
fi

for tool in mmdebstrap buildah gcc; do
  command -v "$tool" >/dev/null || die "$tool is missing (run hack/ensure-system.sh node)"
done
[[ $(id -u) -eq 0 ]] || die "building root filesystems needs root (mmdebstrap, buildah chroot isolation)"

mkdir -p "$dest/rootfs"
exec 9>"$dest/.lock"
flock 9

version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$repo/charts/leadops/Chart.yaml")
[[ -n $version ]] || die "no appVersion in charts/leadops/Chart.yaml"
base_ref="localhost/leadops/base:$IMAGE_DEBIAN_SUITE-$key"
buildah=(buildah --storage-driver=overlay)
timings="$dest/timings"
: >"$timings"
timed() { # name command...: run it and record its seconds
  local name=$1 started
  shift
  started=$(date +%s)
  "$@"
  echo "$name=$(($(date +%s) - started))" >>"$timings"
}

# Without docs, man pages and locales: nothing reads them in a container.
debian_rootfs() { # tarball packages
  local out=$1 packages=$2
  [[ -s $out ]] && return 0
  log "making a Debian $IMAGE_DEBIAN_SUITE root filesystem with $packages (about a minute)"
  # The merged-usr hook's apt and dpkg talk on both streams whatever --quiet says: kept in
  # a log shown only on failure (stdout is this script's answer, the archive directory).
  if ! mmdebstrap --quiet --variant=minbase --include="$packages" \
    --hook-dir="/usr/share/mmdebstrap/hooks/$IMAGE_ROOTFS_HOOK" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    --format=tar "$IMAGE_DEBIAN_SUITE" "$out.partial" >"$out.log" 2>&1; then
    cat "$out.log" >&2
    die "mmdebstrap failed for $out (log above)"
  fi
  mv -f "$out.partial" "$out"
}

# awk reads every line: `head -1` would close the pipe early and, under pipefail, fail on SIGPIPE.
image_id() { "${buildah[@]}" images --noheading --no-trunc --format '{{.ID}}' "$1" 2>/dev/null | awk 'NR == 1'; }

# An image from a root filesystem tarball plus its config (buildah config arguments).
image_from_rootfs() { # ref tarball config-args...
  local ref=$1 tarball=$2
  shift 2
  [[ -n $(image_id "$ref") ]] && return 0
  local ctr
  ctr=$("${buildah[@]}" from scratch)
  "${buildah[@]}" add "$ctr" "$tarball" /
  "${buildah[@]}" config "$@" "$ctr"
  "${buildah[@]}" commit --quiet --rm "$ctr" "$ref" >/dev/null
}

# docker-archive for `ctr images import`; skipped when the image has not changed.
export_image() { # ref name
  local ref=$1 name=$2 id
  id=$(image_id "$ref")
  [[ -n $id ]] || die "image $ref was not built"
  if [[ -s $dest/$name.tar && $(cat "$dest/$name.id" 2>/dev/null) == "$id" ]]; then
    return 0
  fi
  rm -f "$dest/$name.tar" "$dest/$name.tar.partial"
  "${buildah[@]}" push --quiet "$ref" "docker-archive:$dest/$name.tar.partial:$ref" >/dev/null
  mv -f "$dest/$name.tar.partial" "$dest/$name.tar"
  echo "$id" >"$dest/$name.id"
  echo "$ref" >"$dest/$name.ref"
}

build_base() {
  debian_rootfs "$dest/rootfs/base.tar" python3,python3-venv,python-is-python3,passwd
  image_from_rootfs "$base_ref" "$dest/rootfs/base.tar" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --label org.opencontainers.image.title=leadops-base
  export_image "$base_ref" base
}

build_redis() {
  local ref="docker.io/leadops/redis:$IMAGE_DEBIAN_SUITE"
  debian_rootfs "$dest/rootfs/redis.tar" redis-server
  # Debian's redis user, as numbers so kubelet can check runAsNonRoot; no config file:
  # flags come from the Pod.
  local user
  user=$(tar -xOf "$dest/rootfs/redis.tar" ./etc/passwd | awk -F: '$1 == "redis" {print $3 ":" $4}')
  [[ -n $user ]] || die "no redis user in the redis root filesystem"
  # Built under a name keyed like the base, then tagged: a new key (new pins, a new root
  # filesystem recipe) must not find the old image under the public name and keep it.
  local keyed="localhost/leadops/redis:$IMAGE_DEBIAN_SUITE-$key"
  image_from_rootfs "$keyed" "$dest/rootfs/redis.tar" \
    --user "$user" --workingdir /var/lib/redis --entrypoint '["redis-server"]' \
    --port 6379 --label org.opencontainers.image.title=leadops-redis
  "${buildah[@]}" tag "$keyed" "$ref"
  export_image "$ref" redis
}

build_pause() {
  local ref="localhost/leadops/pause:1" work="$dest/pause"
  if [[ -z $(image_id "$ref") ]]; then
    mkdir -p "$work"
    gcc -Os -static -o "$work/pause" "$repo/hack/node/pause.c"
    local ctr
    ctr=$("${buildah[@]}" from scratch)
    "${buildah[@]}" copy "$ctr" "$work/pause" /pause
    "${buildah[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
    "${buildah[@]}" commit --quiet --rm "$ctr" "$ref" >/dev/null
    rm -rf "$work"
  fi
  export_image "$ref" pause
}

# Prometheus built from its Go module (build.sh monitoring: Debian's package has no Kubernetes
# service discovery), a static binary in an image from scratch; the Prometheus Operator's
# StatefulSet sets its flags, user and volumes. Tagged with the version it reports.
build_prometheus() {
  local monitoring version
  monitoring=$("$repo/hack/control-plane/build.sh" monitoring)
  version=$("$monitoring/prometheus" --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p')
  [[ -n $version ]] || die "the built prometheus reports no version"
  local ref="localhost/leadops/prometheus:$version"
  if [[ -z $(image_id "$ref") ]]; then
    local ctr
    ctr=$("${buildah[@]}" from scratch)
    "${buildah[@]}" copy "$ctr" "$monitoring/prometheus" /bin/prometheus
    "${buildah[@]}" config --entrypoint '["/bin/prometheus"]' --user 65534:65534 \
      --workingdir /prometheus --port 9090 \
      --label org.opencontainers.image.title=leadops-prometheus "$ctr"
    "${buildah[@]}" commit --quiet --rm "$ctr" "$ref" >/dev/null
  fi
  export_image "$ref" prometheus
}

# Both programs in one image from scratch (static Go binaries): the operator's Deployment
# runs /bin/operator, the Prometheus Pods' config reloader /bin/prometheus-config-reloader.
build_prometheus_operator() {
  local monitoring version
  monitoring=$("$repo/hack/control-plane/build.sh" monitoring)
  version=$MONITORING_PROMETHEUS_OPERATOR_VERSION
  local ref="localhost/leadops/prometheus-operator:$version"
  if [[ -z $(image_id "$ref") ]]; then
    local ctr
    ctr=$("${buildah[@]}" from scratch)
    "${buildah[@]}" copy "$ctr" "$monitoring/operator" /bin/operator
    "${buildah[@]}" copy "$ctr" "$monitoring/prometheus-config-reloader" /bin/prometheus-config-reloader
    "${buildah[@]}" config --entrypoint '["/bin/operator"]' --user 65534:65534 \
      --label org.opencontainers.image.title=leadops-prometheus-operator "$ctr"
    "${buildah[@]}" commit --quiet --rm "$ctr" "$ref" >/dev/null
  fi
  export_image "$ref" prometheus-operator
}

build_project_image() { # name
  local name=$1 ref="docker.io/leadops/$1:$version"
  local mounts=()
  for file in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
    [[ -f $file ]] && mounts+=(--volume "$file:$file:ro")
  done
  # The last commit that changed what the image is built from: an unrelated commit
  # leaves the image (and its archive) as it is.
  local revision
  revision=$(git -C "$repo" log -1 --format=%h -- "Dockerfile.$name" constraints pyproject.toml \
    README.md core jobs scorer operator 2>/dev/null || true)
  log "building $ref"
  "${buildah[@]}" build --quiet --isolation chroot --layers \
    --build-arg "PYTHON_IMAGE=$base_ref" --build-arg "VERSION=$version" \
    --build-arg "REVISION=${revision:-unknown}" \
    "${mounts[@]}" --file "$repo/Dockerfile.$name" --tag "$ref" "$repo" >/dev/null
  export_image "$ref" "$name"
}

timed base build_base
timed pause build_pause
timed redis build_redis
timed scorer build_project_image scorer
timed jobs build_project_image jobs
timed operator build_project_image operator
timed prometheus build_prometheus
timed prometheus-operator build_prometheus_operator

# Archive sizes (uncompressed layers, what the node unpacks), for docs/benchmarks.md.
for name in "${archives[@]}"; do
  echo "size_$name=$(stat -c %s "$dest/$name.tar")" >>"$timings"
done
log "images ready in $dest: $(tr '\n' ' ' <"$timings")"
echo "$dest"
