#!/usr/bin/env bash
# Make sure the system programs the tests and the demo run for real are here:
# install them with apt-get when we are root, otherwise say in one line what is missing.
#
#   ensure-system.sh        redis-server, redis-benchmark, promtool
#   ensure-system.sh node   also the real node's and the image build's (containerd, runc,
#                           CNI plugins, iptables, buildah, mmdebstrap, a C compiler, and git,
#                           whose http-backend serves the Flux e2e test's repository)
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
# promtool checks and unit-tests the alert rules (Debian ships it in the prometheus package).
command -v promtool >/dev/null || need+=(prometheus)

if [[ ${1:-} == node ]]; then
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [[ -x /usr/lib/cni/bridge || -x /opt/cni/bin/bridge ]] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v buildah >/dev/null || need+=(buildah)
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  # The Pod sandbox's pause binary is built statically (hack/node/pause.c).
  command -v gcc >/dev/null || need+=(gcc libc6-dev)
  # tests/e2e/test_flux.py: `git http-backend` serves the repository Flux syncs.
  [[ -x /usr/lib/git-core/git-http-backend ]] || need+=(git)
fi

if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "leadops: installing ${need[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "leadops: missing system packages: ${need[*]} (install them, e.g. sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
