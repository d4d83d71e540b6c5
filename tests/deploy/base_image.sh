#!/usr/bin/env bash
# Prints the path of a tarball of a minimal Debian bookworm root filesystem, made with
# debootstrap from the Debian archive once and cached, because no image registry is
# reachable here.  `podman import` of it stands in for debian:bookworm-slim.
# Usage: base_image.sh [CACHE_DIR]   (default /var/cache/deskbridge-ci)
set -euo pipefail
cache=${1:-/var/cache/deskbridge-ci}
tarball="$cache/debian-bookworm-minbase.tar"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # two test runs must not debootstrap into the same place
if [ ! -s "$tarball" ]; then
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 || {
    echo "debootstrap failed, see $cache/debootstrap.log" >&2; exit 1; }
  # Security updates as in the real image; package lists and .debs would only bloat it.
  echo "deb http://deb.debian.org/debian-security bookworm-security main" >>"$root/etc/apt/sources.list"
  echo "deb http://deb.debian.org/debian bookworm-updates main" >>"$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi
echo "$tarball"
