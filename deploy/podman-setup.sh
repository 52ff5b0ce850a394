#!/usr/bin/env bash
# The project's own copy of the team's container setup script (2026-11-29), so that CI and any
# clone of this repository can set up containers with nothing beside it.
# Makes this machine able to build and run containers for real, as root, without a Docker daemon:
# podman (Docker-compatible CLI), runc, podman-compose (runs compose files), and a local stand-in for the
# official base image node:20-bookworm-slim (Debian 12 minbase + this machine's Node 20 and npm, a `node`
# user with uid 1000 as in the official image), since no image registry is reachable from here.
# Idempotent; about 1-2 minutes the first time. Usage (as root): bash deploy/podman-setup.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v podman-compose >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc podman-compose debootstrap >/dev/null
fi
# This kind of machine has hybrid cgroups (crun refuses them) and forbids setting RLIMIT_NPROC:
# use runc, cgroupfs, and no default ulimits.
mkdir -p /etc/containers
cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
BASE=docker.io/library/node:20-bookworm-slim
if ! podman image exists "$BASE"; then
  R=$(mktemp -d /var/tmp/rootfs.XXXX)
  debootstrap --variant=minbase bookworm "$R" >/dev/null
  install -m 755 "$(command -v node)" "$R/usr/local/bin/node"
  npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  mkdir -p "$R/usr/local/lib/node_modules" && cp -a "$npmdir" "$R/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/local/bin/npx"
  # npm inside builds reaches the same registry as this machine, with the same CA bundle
  g=$(npm config get globalconfig); [ -f "$g" ] && mkdir -p "$R/usr/local/etc" && cp "$g" "$R/usr/local/etc/npmrc"
  [ -f /root/.npmrc ] && cp /root/.npmrc "$R/root/.npmrc"
  cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || { mkdir -p "$R/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"; }
  chroot "$R" groupadd -g 1000 node && chroot "$R" useradd -m -u 1000 -g node -s /bin/sh node
  tar -C "$R" -c . | podman import --change 'CMD ["node"]' - "$BASE" >/dev/null 2>&1
  podman tag "$BASE" docker.io/library/node:20-slim docker.io/library/node:20
  rm -rf "$R"
fi
echo "containers ready: podman $(podman version --format '{{.Client.Version}}'), runc, podman-compose; base image $BASE (local stand-in)"
