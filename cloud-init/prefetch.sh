#!/bin/bash
# glbox prefetch: at first boot, adds GitLab's package repository and
# downloads (never installs) the package the bootstrap is to install,
# while glbox is still waiting for the box to come online. The bootstrap
# then installs from the local copy: apt-get and dnf use a package already
# in their cache (/var/cache/apt/archives, dnf's cachedir) instead of
# downloading it again.
#
# cloud-init runs it once, from the user data, with the deployment's
# values and cloud-init/package-source.sh in front. It needs and reads no
# secret. It is only a head start: whatever fails here, the bootstrap does
# itself, so it always exits 0. Its log is /var/log/glbox/prefetch.log.
# shellcheck disable=SC2154 # package-source.sh, put in front by glbox, sets family and the rest
set -uo pipefail

phase() { printf 'glbox-phase: %s\n' "$*"; }
give_up() {
  printf 'glbox-prefetch: %s; the bootstrap fetches the package itself\n' "$*"
  exit 0
}

[ -n "$family" ] || give_up "unsupported OS $GLBOX_OS"
spec="$(package_spec "$GLBOX_VERSION")"
rm -f "$prefetch_mark"
if [ "$family" = deb ]; then
  apt_wait_for_lock
fi
if [ ! -e "$repo_file" ]; then
  phase "repository"
  add_repository || give_up "could not add GitLab's package repository"
fi
phase "download $spec"
if [ "$family" = deb ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install --download-only -y "$spec" || give_up "could not download $spec"
else
  dnf install --downloadonly -y "$spec" || give_up "could not download $spec"
fi
mkdir -p "$(dirname "$prefetch_mark")"
printf '%s\n' "$spec" > "$prefetch_mark"
printf 'glbox-prefetch: %s is downloaded\n' "$spec"
