#!/usr/bin/env bash
# Local stand-ins for the public base images of deploy/Dockerfile, for machines that reach
# Debian's archive and the npm registry but no container registry (CI's):
#
#   localhost/piface-ci/debian:bookworm-slim   debootstrap --variant=minbase bookworm
#   localhost/piface-ci/node:20-bookworm-slim  that + this machine's Node.js in /usr/local
#                                              (where the official node images keep it)
#
# Made once (about a minute) and kept in podman's image store; the rootfs is cached in
# /var/cache/piface-ci. Any CA this machine adds for its registry proxy is trusted by the node
# image's npm (NODE_EXTRA_CA_CERTS), as the public image trusts the public registry. Needs root,
# podman and debootstrap; CONTAINERS_CONF as scripts/containers/containers.conf sets it.
set -euo pipefail

debian=localhost/piface-ci/debian:bookworm-slim
node=localhost/piface-ci/node:20-bookworm-slim
cache=/var/cache/piface-ci
mirror="${PIFACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if ! podman image exists "$debian"; then
  if [ ! -x "$cache/bookworm/usr/bin/apt-get" ]; then
    rm -rf "$cache/bookworm.tmp"
    mkdir -p "$cache"
    debootstrap --variant=minbase bookworm "$cache/bookworm.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
    # As the public slim images: no package lists, no apt cache.
    rm -rf "$cache/bookworm.tmp/var/lib/apt/lists/"* "$cache/bookworm.tmp/var/cache/apt/"*.bin
    mv "$cache/bookworm.tmp" "$cache/bookworm"
  fi
  tar -C "$cache/bookworm" -c . | podman import --quiet - "$debian" >/dev/null
fi

if ! podman image exists "$node"; then
  command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed" >&2; exit 1; }
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  npm_dir="$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)"
  mkdir -p "$ctx/usr/local/bin" "$ctx/usr/local/lib/node_modules" "$ctx/usr/local/share/ca-certificates"
  cp "$(readlink -f "$(command -v node)")" "$ctx/usr/local/bin/node"
  cp -a "$npm_dir" "$ctx/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/usr/local/share/ca-certificates/host-bundle.crt"
  cat >"$ctx/Containerfile" <<EOC
FROM $debian
COPY usr /usr
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/host-bundle.crt
CMD ["node"]
EOC
  podman build --quiet -t "$node" "$ctx" >/dev/null
fi
echo "$debian"
echo "$node"
