#!/bin/bash
# glbox bootstrap: install and configure Omnibus GitLab on the prepared box.
# Sent by glbox (through SSM Run Command or SSH) and run as root; glbox puts
# the deployment's values in front of this text as GLBOX_* variables.
#
# Safe to re-run: it installs only what is missing, upgrades only to a newer
# pinned version (never downgrades), writes gitlab.rb only when it changed,
# and reconfigures only then. Everything it prints also goes to
# /var/log/glbox/bootstrap.log, so a failure can be read on the box.
#
# The initial root password is read here, on the instance, from SSM
# Parameter Store; it is never printed and never sent by glbox.
set -euo pipefail

: "${GLBOX_DEPLOYMENT:?}" "${GLBOX_REGION:?}" "${GLBOX_OS:?}" "${GLBOX_EDITION:?}"
: "${GLBOX_VERSION:?}" "${GLBOX_EXTERNAL_URL:?}" "${GLBOX_DATA_VOLUME:?}" "${GLBOX_GITLAB_RB_B64:?}"
root_email="${GLBOX_ROOT_EMAIL:-}"

# Paths, overridable only so the tests can run this in a sandbox.
etc_gitlab="${GLBOX_ETC_GITLAB:-/etc/gitlab}"
log_dir="${GLBOX_LOG_DIR:-/var/log/glbox}"
prepare_data="${GLBOX_PREPARE_DATA:-/usr/local/sbin/glbox-prepare-data}"
data_mountpoint="${GLBOX_DATA_MOUNTPOINT:-/var/opt/gitlab}"
apt_sources="${GLBOX_APT_SOURCES:-/etc/apt/sources.list.d}"
yum_repos="${GLBOX_YUM_REPOS:-/etc/yum.repos.d}"

package="gitlab-$GLBOX_EDITION"
# GitLab's required upgrade stops (major.minor), from its upgrade-path
# documentation: a jump across one of these can fail.
required_stops="16.3 16.7 16.11 17.1 17.3 17.5 17.8 17.11 18.2 18.5 18.8 18.11"

mkdir -p "$log_dir"
chmod 0750 "$log_dir"
exec > >(tee -a "$log_dir/bootstrap.log") 2>&1

phase() { printf 'glbox-phase: %s\n' "$*"; }
fail() {
  printf 'glbox-error: %s\n' "$*"
  exit "${2:-1}"
}

case "$GLBOX_OS" in
  ubuntu-24.04)
    family=deb
    repo_file="$apt_sources/gitlab_$package.list"
    ;;
  al2023)
    family=rpm
    repo_file="$yum_repos/gitlab_$package.repo"
    ;;
  *) fail "unsupported OS $GLBOX_OS" ;;
esac

# The installed version (major.minor.patch), or nothing.
installed_version() {
  if [ "$family" = deb ]; then
    # dpkg-query fails for a package it has never seen: that is "nothing".
    { dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$package" 2>/dev/null || true; } |
      sed -n 's/^installed \([0-9.]*\)-.*/\1/p'
  else
    rpm -q --qf '%{VERSION}\n' "$package" 2>/dev/null | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' || true
  fi
}

# version_lt A B: A sorts before B.
version_lt() {
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]
}

warn_required_stops() {
  local from="$1" to="$2" stop
  for stop in $required_stops; do
    if version_lt "$from" "$stop.0" && version_lt "$stop.99999" "$to"; then
      printf 'glbox-warning: the upgrade %s -> %s crosses required upgrade stop %s; GitLab expects an upgrade to %s first\n' \
        "$from" "$to" "$stop" "$stop"
    fi
  done
}

package_spec() {
  if [ "$GLBOX_VERSION" = latest ]; then
    printf '%s' "$package"
  elif [ "$family" = deb ]; then
    printf '%s=%s-%s.0' "$package" "$GLBOX_VERSION" "$GLBOX_EDITION"
  else
    printf '%s-%s' "$package" "$GLBOX_VERSION"
  fi
}

# install_package [ROOT_PASSWORD]: EXTERNAL_URL (and the first-install
# values) go to this one command only: exported globally, EXTERNAL_URL would
# rewrite gitlab.rb on every later package operation.
install_package() {
  local spec
  spec="$(package_spec)"
  local -a first_install=()
  if [ "$#" -gt 0 ]; then
    first_install+=("GITLAB_ROOT_PASSWORD=$1")
    if [ -n "$root_email" ]; then
      first_install+=("GITLAB_ROOT_EMAIL=$root_email")
    fi
  fi
  if [ "$family" = deb ]; then
    env "${first_install[@]}" EXTERNAL_URL="$GLBOX_EXTERNAL_URL" DEBIAN_FRONTEND=noninteractive \
      apt-get install -y "$spec"
  else
    env "${first_install[@]}" EXTERNAL_URL="$GLBOX_EXTERNAL_URL" dnf install -y "$spec"
  fi
}

phase "data volume"
"$prepare_data" "$GLBOX_DATA_VOLUME" "$data_mountpoint"

phase "configuration"
# gitlab.rb first, so that the package's own reconfigure uses it.
mkdir -p "$etc_gitlab"
chmod 0775 "$etc_gitlab"
new_rb="$(mktemp)"
trap 'rm -f "$new_rb"' EXIT
printf '%s' "$GLBOX_GITLAB_RB_B64" | base64 -d > "$new_rb"
rb_changed=0
if ! cmp -s "$new_rb" "$etc_gitlab/gitlab.rb"; then
  install -m 0600 "$new_rb" "$etc_gitlab/gitlab.rb"
  rb_changed=1
  echo "gitlab.rb written"
fi

phase "repository"
if [ ! -e "$repo_file" ]; then
  curl -fsSL "https://packages.gitlab.com/install/repositories/gitlab/$package/script.$family.sh" | bash
fi

phase "package"
current="$(installed_version)"
package_changed=0
if [ -z "$current" ]; then
  root_password="$(aws ssm get-parameter --region "$GLBOX_REGION" \
    --name "/glbox/$GLBOX_DEPLOYMENT/root-password" --with-decryption \
    --query Parameter.Value --output text)" ||
    fail "cannot read /glbox/$GLBOX_DEPLOYMENT/root-password from SSM (does the instance role allow it?)"
  echo "installing $(package_spec)"
  install_package "$root_password"
  unset root_password
  package_changed=1
elif [ "$GLBOX_VERSION" != latest ] && [ "$GLBOX_VERSION" != "$current" ]; then
  if version_lt "$GLBOX_VERSION" "$current"; then
    fail "$package $current is installed; refusing to downgrade to $GLBOX_VERSION (GitLab does not support downgrades)" 3
  fi
  warn_required_stops "$current" "$GLBOX_VERSION"
  echo "upgrading $package $current -> $GLBOX_VERSION"
  install_package
  package_changed=1
else
  echo "$package $current is installed"
fi

# Installing or upgrading the package reconfigures GitLab by itself.
if [ "$rb_changed" = 1 ] && [ "$package_changed" = 0 ]; then
  phase "reconfigure"
  gitlab-ctl reconfigure
fi

printf 'glbox-result: %s %s\n' "$package" "$(installed_version)"
