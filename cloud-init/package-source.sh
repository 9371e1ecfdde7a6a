#!/bin/bash
# glbox: where GitLab's package comes from. glbox puts these lines after
# the GLBOX_* values (GLBOX_OS, GLBOX_EDITION) of the two scripts that
# fetch it, so both fetch it the same way: the bootstrap, and the
# first-boot prefetch (cloud-init/prefetch.sh) that downloads it while
# glbox waits for the box.
#
# - package, family (deb or rpm; empty on an OS glbox does not know) and
#   repo_file (the repository's source, there once it was added);
# - prefetch_mark: the package spec the prefetch downloaded, written once
#   the download succeeded;
# - apt_wait_for_lock and apt_update: apt's locks at first boot;
# - package_spec VERSION: what apt-get or dnf is asked for;
# - add_repository: packages.gitlab.com's own script for the family (it
#   adds the signing key and the source, then refreshes the lists).

# shellcheck disable=SC2034 # the scripts these lines are put in front of use them
# Paths, overridable only so the tests can run this in a sandbox.
apt_sources="${GLBOX_APT_SOURCES:-/etc/apt/sources.list.d}"
yum_repos="${GLBOX_YUM_REPOS:-/etc/yum.repos.d}"
apt_conf_dir="${GLBOX_APT_CONF_DIR:-/etc/apt/apt.conf.d}"
prefetch_mark="${GLBOX_PREFETCH_MARK:-/var/lib/glbox/prefetched}"
# How long each apt operation waits for the dpkg lock: at first boot
# unattended-upgrades holds it for minutes, and apt-get without a timeout
# fails at once ("Could not get lock /var/lib/dpkg/lock-frontend").
apt_lock_wait="${GLBOX_APT_LOCK_WAIT:-900}"

package="gitlab-$GLBOX_EDITION"
family=""
repo_file=""
case "$GLBOX_OS" in
  ubuntu-24.04)
    family=deb
    repo_file="$apt_sources/gitlab_$package.list"
    ;;
  al2023)
    family=rpm
    repo_file="$yum_repos/gitlab_$package.repo"
    ;;
esac

# apt reads apt.conf.d for every apt-get, the repository script's too.
apt_wait_for_lock() {
  mkdir -p "$apt_conf_dir"
  printf 'DPkg::Lock::Timeout "%s";\n' "$apt_lock_wait" > "$apt_conf_dir/90glbox-lock-timeout"
  phase "package lock: each apt operation waits up to ${apt_lock_wait}s for other package managers (unattended-upgrades at first boot)"
}

# apt-get update takes only the package lists' lock, which
# DPkg::Lock::Timeout does not cover (apt: apt-pkg/acquire.cc GetLock, no
# timeout), and fails at once while another update (apt-daily at first
# boot) holds it: retried, bounded by the same wait.
apt_update() {
  local waited=0 out
  until out="$(apt-get update 2>&1)"; do
    printf '%s\n' "$out"
    if ! grep -q 'Could not get lock' <<< "$out" || [ "$waited" -ge "$apt_lock_wait" ]; then
      return 1
    fi
    phase "package lists locked by another apt-get update; retrying (waited ${waited}s of ${apt_lock_wait}s)"
    sleep 2
    waited=$((waited + 2))
  done
  printf '%s\n' "$out"
}

# package_spec VERSION ("latest": the newest).
package_spec() {
  if [ "$1" = latest ]; then
    printf '%s' "$package"
  elif [ "$family" = deb ]; then
    printf '%s=%s-%s.0' "$package" "$1" "$GLBOX_EDITION"
  else
    printf '%s-%s' "$package" "$1"
  fi
}

add_repository() {
  curl -fsSL "https://packages.gitlab.com/install/repositories/gitlab/$package/script.$family.sh" | bash
}
