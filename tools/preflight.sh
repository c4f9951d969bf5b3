#!/usr/bin/env bash
# Says which tools `make up` / `make preview` need and which are missing, with where to get them.
set -u
stack=${STACK:-dev}
missing=0
need() {
  if command -v "$1" >/dev/null 2>&1; then
    printf '  ok       %-8s %s\n' "$1" "$("$1" $3 2>/dev/null | head -n 1)"
  else
    printf '  MISSING  %-8s %s\n' "$1" "$2"
    missing=1
  fi
}
# at_least TOOL MAJOR MINOR WHAT HINT: the first vMAJOR.MINOR in `TOOL version` is at least that.
at_least() {
  command -v "$1" >/dev/null 2>&1 || return 0
  found=$("$1" version 2>/dev/null | head -n 1)
  # shellcheck disable=SC2046  # split into major and minor on purpose
  set -- "$@" $(printf '%s' "$found" | sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\)\..*/\1 \2/p')
  if [ $# -lt 7 ] || [ "$6" -lt "$2" ] || { [ "$6" -eq "$2" ] && [ "$7" -lt "$3" ]; }; then
    echo "  MISSING  $4 (found: ${found:-no version}): $5"
    missing=1
  fi
}
echo "preflight for stack $stack:"
need pulumi "Pulumi CLI: https://www.pulumi.com/docs/iac/download-install/" version
# The BIG-IP save commands use the replacementTrigger resource option (engine 3.226+).
at_least pulumi 3 226 "Pulumi CLI 3.226 or later" "CI pins 3.272.0"
need kubectl "kubectl (waits for Calico's API server): https://kubernetes.io/docs/tasks/tools/" "version --client"
if [ "$stack" = dev ]; then
  need docker "Docker Engine (k3d runs k3s in containers): https://docs.docker.com/engine/install/" --version
  need k3d "k3d v5.5 or later: https://k3d.io/stable/#installation" version
  # The cluster config is k3d.io/v1alpha5, which k3d reads from v5.5.0.
  at_least k3d 5 5 "k3d v5.5 or later" "https://k3d.io/stable/#installation"
  if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
    echo "  MISSING  a running Docker engine (docker info failed): start the Docker daemon"
    missing=1
  fi
fi
if [ "$missing" -ne 0 ]; then
  echo "preflight: install what is MISSING above, then run the command again" >&2
  exit 1
fi
