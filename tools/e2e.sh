#!/usr/bin/env bash
# The steps of the `e2e dev` job (.github/workflows/e2e.yml), one subcommand each, runnable on
# any Linux x86_64 machine with Docker (README "End-to-end deploy on pull requests"):
#
#   tools/e2e.sh install   the pinned Pulumi CLI, k3d and kubectl, checksum-verified, into $E2E_DIR/bin
#   tools/e2e.sh render    the offline render of dev: the smoke checks' expectations, and the artifact's
#   tools/e2e.sh up        make up STACK=dev, on a state folder of its own and a generated passphrase
#   tools/e2e.sh smoke     tools.smoke against the deployed unit
#   tools/e2e.sh preview   pulumi preview --expect-no-changes: a second run changes nothing
#   tools/e2e.sh collect   events, pods and the logs of failing namespaces, into the artifact
#   tools/e2e.sh destroy   make destroy STACK=dev, then fails if the k3d cluster or its network is left
#
# E2E_RENDER_FROM=<folder>: `render` copies that existing dev render instead of rendering (for the
# tests only, which render dev once per session; the job never sets it).
#
# Each subcommand stops at its first failure. Nothing secret is printed or put in the artifact:
# the passphrase and the kubeconfig stay in $E2E_DIR/private.
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=dev
# components/cluster.py k3d_cluster_name() of the dev unit. It sets no docker network, so k3d
# creates k3d-<cluster> and deletes it with the cluster (k3d-io/k3d v5.9.0 pkg/client/cluster.go).
CLUSTER=cpaas-dev
NETWORK=k3d-$CLUSTER

# Pinned tools. Each download is checked against its publisher's checksum file, fetched at run
# time, and against the sha256 pinned here when there is one; the two must agree.
# Pulumi: the SDK version in requirements.txt. No published sha256 for 3.272.0 could be confirmed
# offline, so its release's checksums file (pulumi-3.272.0-checksums.txt, GitHub) decides, checked
# against the tarball from get.pulumi.com (the two hosts must agree).
PULUMI_VERSION=3.272.0
PULUMI_SHA256=
# k3d v5.9.0 (components/cluster.py cites it; preflight needs 5.5+), k3d-linux-amd64. Its release's
# checksums.txt lists "<sha256>  _dist/k3d-linux-amd64" (k3d-io/k3d v5.9.0 Makefile gen-checksum).
K3D_VERSION=v5.9.0
K3D_SHA256=06d8f25bc3a971c4eb29e0ff08429b180402db0f4dec838c9eac427e296800a0
# kubectl of the k3s minor in Pulumi.dev.yaml (1.34); dl.k8s.io publishes kubectl.sha256 beside it.
KUBECTL_VERSION=v1.34.9
KUBECTL_SHA256=73bb6f5063caadae1e73a39de018d8ad21755984bea35358484db817859e7634

E2E_DIR=${E2E_DIR:-${RUNNER_TEMP:-$PWD/build}/e2e}
ART=$E2E_DIR/artifact     # uploaded when the job fails: logs/, cluster/, render/
PRIVATE=$E2E_DIR/private  # never uploaded, never printed
BIN=$E2E_DIR/bin
PY=.venv/bin/python
export PATH="$BIN:$PATH"
# No Pulumi Cloud: a state folder of this run's own (a developer's .pulumi-state is left alone).
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$E2E_DIR/state}
# No prompts (Pulumi 2.2+: PULUMI_SKIP_CONFIRMATIONS stands for --yes; pulumi/pulumi CHANGELOG, #4477).
export PULUMI_SKIP_CONFIRMATIONS=true PULUMI_SKIP_UPDATE_CHECK=true

die() {
  echo "e2e: $*" >&2
  exit 1
}

prepare() {
  mkdir -p "$ART/logs" "$E2E_DIR/state" "$BIN"
  mkdir -p "$PRIVATE"
  chmod 700 "$PRIVATE"
  # The dev stack's secrets are encrypted with a passphrase generated for this run, read from a
  # file, so it is in no environment variable, argument or log. One you set is used instead.
  if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}${PULUMI_CONFIG_PASSPHRASE_FILE-}" ]; then
    if [ ! -s "$PRIVATE/passphrase" ]; then
      (umask 077 && head -c 32 /dev/urandom | base64 -w0 >"$PRIVATE/passphrase")
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE=$PRIVATE/passphrase
  fi
}

# logged NAME COMMAND...: runs it, its output also in the artifact's logs/NAME.log.
logged() {
  local name=$1
  shift
  "$@" 2>&1 | tee -a "$ART/logs/$name.log"
}

# ---------------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------------

fetch() { # URL FILE
  curl -fsSL --retry 3 --proto '=https' -o "$2" "$1"
}

# published_sum CHECKSUM_FILE NAME: the sha256 the file gives NAME ("<sha>  [dir/]NAME" lines,
# or a lone "<sha>" as dl.k8s.io's .sha256 files have).
published_sum() {
  awk -v name="$2" '
    NF == 1 && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { print $1; exit }
    { file = $2; sub(/^\*/, "", file); sub(/.*\//, "", file); if (file == name) { print $1; exit } }
  ' "$1"
}

# verified FILE NAME CHECKSUM_FILE PINNED: FILE's sha256 is what the publisher lists for NAME,
# and what is pinned here (when something is).
verified() {
  local published
  published=$(published_sum "$3" "$2")
  [ -n "$published" ] || die "the publisher's checksum file lists no $2"
  if [ -n "$4" ] && [ "$4" != "$published" ]; then
    die "$2: the publisher's checksum ($published) is not the pinned one ($4); refusing it"
  fi
  echo "$published  $1" | sha256sum --check --strict --quiet - ||
    die "$2 does not match its sha256 $published; refusing it"
  echo "verified $2 (sha256 $published)"
}

install_tools() {
  [ "$(uname -sm)" = "Linux x86_64" ] ||
    die "the pinned tools are for Linux x86_64; elsewhere install them yourself (make preflight)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT

  local tarball=pulumi-v$PULUMI_VERSION-linux-x64.tar.gz
  fetch "https://get.pulumi.com/releases/sdk/$tarball" "$tmp/$tarball"
  fetch "https://github.com/pulumi/pulumi/releases/download/v$PULUMI_VERSION/pulumi-$PULUMI_VERSION-checksums.txt" \
    "$tmp/pulumi.sums"
  verified "$tmp/$tarball" "$tarball" "$tmp/pulumi.sums" "$PULUMI_SHA256"
  tar -xzf "$tmp/$tarball" -C "$BIN" --strip-components=1  # pulumi/pulumi, pulumi/pulumi-language-*

  fetch "https://github.com/k3d-io/k3d/releases/download/$K3D_VERSION/k3d-linux-amd64" "$tmp/k3d-linux-amd64"
  fetch "https://github.com/k3d-io/k3d/releases/download/$K3D_VERSION/checksums.txt" "$tmp/k3d.sums"
  verified "$tmp/k3d-linux-amd64" k3d-linux-amd64 "$tmp/k3d.sums" "$K3D_SHA256"
  install -m 0755 "$tmp/k3d-linux-amd64" "$BIN/k3d"

  local kubectl=https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/amd64/kubectl
  fetch "$kubectl" "$tmp/kubectl"
  fetch "$kubectl.sha256" "$tmp/kubectl.sha256"
  verified "$tmp/kubectl" kubectl "$tmp/kubectl.sha256" "$KUBECTL_SHA256"
  install -m 0755 "$tmp/kubectl" "$BIN/kubectl"

  # Later steps of the job find them first (GitHub prepends these folders to PATH).
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$BIN" >>"$GITHUB_PATH"; fi
  pulumi version
  k3d version
  kubectl version --client
}

# ---------------------------------------------------------------------------------------------
# the deploy
# ---------------------------------------------------------------------------------------------

cluster_exists() { k3d cluster get "$CLUSTER" >/dev/null 2>&1; }
network_exists() { docker network inspect "$NETWORK" >/dev/null 2>&1; }
stack_exists() { pulumi stack select "$STACK" >/dev/null 2>&1; }

up() {
  # The program adopts an existing cluster of that name, and destroy would delete it.
  if cluster_exists; then
    die "k3d cluster $CLUSTER already exists (your own make up STACK=dev?); this job creates and deletes it: remove it first (make destroy STACK=dev) or run elsewhere"
  fi
  logged up make up STACK="$STACK"
}

smoke() {
  logged smoke "$PY" -m tools.smoke --stack "$STACK" --render "$ART/render" --timeout "${E2E_SMOKE_TIMEOUT:-600}"
}

preview() {
  logged preview pulumi preview --stack "$STACK" --expect-no-changes --diff
}

destroy() {
  local failed=0
  if stack_exists; then
    logged destroy make destroy STACK="$STACK" || failed=1
  else
    echo "e2e: no stack $STACK in $PULUMI_BACKEND_URL: nothing for pulumi to destroy"
  fi
  if cluster_exists; then
    echo "e2e: the k3d cluster $CLUSTER is still there after destroy" >&2
    failed=1
  fi
  if network_exists; then
    echo "e2e: the docker network $NETWORK is still there after destroy" >&2
    failed=1
  fi
  [ "$failed" -eq 0 ] || exit 1
  echo "e2e: k3d cluster $CLUSTER and docker network $NETWORK are gone"
}

# Best effort: what a failed run leaves to read. Never fails the step.
collect() {
  local out=$ART/cluster kubeconfig=$PRIVATE/kubeconfig
  mkdir -p "$out/logs"
  if ! (umask 077 && k3d kubeconfig get "$CLUSTER" >"$kubeconfig" 2>/dev/null); then
    echo "e2e: no k3d cluster $CLUSTER to collect from"
    return 0
  fi
  local k=(kubectl --kubeconfig "$kubeconfig" --request-timeout=30s)
  "${k[@]}" get events -A --sort-by=.lastTimestamp >"$out/events.txt" 2>&1 || true
  "${k[@]}" get pods -A -o wide >"$out/pods.txt" 2>&1 || true
  "${k[@]}" get deployments,daemonsets,statefulsets -A -o wide >"$out/workloads.txt" 2>&1 || true
  # Failing namespaces: a pod neither Completed nor Running with all its containers ready.
  local ns pod
  for ns in $("${k[@]}" get pods -A --no-headers 2>/dev/null |
    awk '{ split($3, r, "/"); if ($4 != "Completed" && ($4 != "Running" || r[1] != r[2])) print $1 }' | sort -u); do
    for pod in $("${k[@]}" get pods -n "$ns" -o name 2>/dev/null); do
      "${k[@]}" logs -n "$ns" "$pod" --all-containers --prefix --tail=2000 \
        >"$out/logs/$ns.${pod#pod/}.log" 2>&1 || true
    done
  done
  echo "e2e: cluster state in $out"
}

render() {
  rm -rf "$ART/render"
  if [ -n "${E2E_RENDER_FROM:-}" ]; then
    cp -R "$E2E_RENDER_FROM" "$ART/render"
    return
  fi
  "$PY" -m tools.render --stack "$STACK" --out "$ART/render" --no-validate
}

case "${1:-}" in
  install | render | up | smoke | preview | collect | destroy) ;;
  *)
    echo "usage: tools/e2e.sh install|render|up|smoke|preview|collect|destroy" >&2
    exit 2
    ;;
esac
prepare
if [ "$1" = install ]; then install_tools; else "$1"; fi
