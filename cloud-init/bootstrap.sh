#!/bin/bash
# glbox bootstrap: install and configure Omnibus GitLab on the prepared box.
# Sent by glbox (through SSM Run Command or SSH) and run as root; glbox puts
# the deployment's values in front of this text as GLBOX_* variables, then
# cloud-init/package-source.sh (the package and its repository).
#
# Safe to re-run: it installs only what is missing, upgrades only to a newer
# pinned version (never downgrades), writes gitlab.rb only when it changed,
# and reconfigures only then (or when an earlier reconfigure did not
# finish). Everything it prints also goes to /var/log/glbox/bootstrap.log,
# so a failure can be read on the box.
#
# The initial root password and the SMTP password are read here, on the
# instance, from SSM Parameter Store; they are never printed, never on a
# command line, and never sent by glbox.
# shellcheck disable=SC2154 # package-source.sh, put in front by glbox, sets family, package and the rest
set -euo pipefail

: "${GLBOX_DEPLOYMENT:?}" "${GLBOX_REGION:?}" "${GLBOX_OS:?}" "${GLBOX_EDITION:?}" "${GLBOX_ROOT_PASSWORD_PARAMETER:?}"
: "${GLBOX_VERSION:?}" "${GLBOX_EXTERNAL_URL:?}" "${GLBOX_DATA_VOLUME:?}" "${GLBOX_GITLAB_RB_B64:?}"
# The data volume's size (GiB) glbox asked EBS for: the file system is
# grown to it (0: whatever the device shows).
data_size_gib="${GLBOX_DATA_SIZE_GIB:-0}"
root_email="${GLBOX_ROOT_EMAIL:-}"
# Empty when email is off.
smtp_parameter="${GLBOX_SMTP_PASSWORD_PARAMETER:-}"

# Paths, overridable only so the tests can run this in a sandbox.
etc_gitlab="${GLBOX_ETC_GITLAB:-/etc/gitlab}"
log_dir="${GLBOX_LOG_DIR:-/var/log/glbox}"
# Root's own: /run/lock is world-writable, and anyone could hold a lock
# there to stop the bootstrap.
lock_dir="${GLBOX_LOCK_DIR:-/run/glbox}"
cloud_init_run_dir="${GLBOX_CLOUD_INIT_RUN_DIR:-/run/cloud-init}"
prepare_data="${GLBOX_PREPARE_DATA:-/usr/local/sbin/glbox-prepare-data}"
data_mountpoint="${GLBOX_DATA_MOUNTPOINT:-/var/opt/gitlab}"
# How long GitLab's services may take to show as running.
services_wait="${GLBOX_SERVICES_WAIT:-120}"

# What must survive a new instance lives on the data volume: GitLab's
# secrets (without them encrypted data such as CI variables and 2FA
# cannot be read) and the version the data was last used with.
state_dir="$data_mountpoint/glbox"
# Written before a change, removed once GitLab reconfigured successfully.
pending="$etc_gitlab/.glbox-reconfigure-pending"
# nginx's certificate for an https URL: gitlab_rails['nginx']['ssl_certificate']
# defaults to /etc/gitlab/ssl/<host>.crt and its key to <host>.key
# (omnibus-gitlab files/gitlab-cookbooks/gitlab/libraries/gitlab_rails.rb;
# doc/settings/ssl/_index.md, "Configure HTTPS manually").
tls_host=""
case "$GLBOX_EXTERNAL_URL" in
  https://*)
    tls_host="${GLBOX_EXTERNAL_URL#https://}"
    tls_host="${tls_host%%/*}"
    tls_host="${tls_host%%:*}"
    ;;
esac
ssl_dir="$etc_gitlab/ssl"
tls_crt="$ssl_dir/$tls_host.crt"
tls_key="$ssl_dir/$tls_host.key"
# GitLab's required upgrade stops, the version to install at each, oldest
# first (glbox's cloud-init/upgrade-path.txt, which names its source): an
# upgrade across one installs it first.
upgrade_stops="${GLBOX_UPGRADE_STOPS:-}"
# How long the background migrations of one stop may run before the next
# is installed, and how often they are asked about.
migrations_wait="${GLBOX_MIGRATIONS_WAIT:-3600}"
migrations_poll="${GLBOX_MIGRATIONS_POLL:-15}"

# One bootstrap at a time (a re-run must not overlap a slow install),
# taken before anything is written: a second one touches nothing.
mkdir -p "$lock_dir"
chmod 0700 "$lock_dir"
exec 8> "$lock_dir/glbox-bootstrap.lock"
if ! flock -n 8; then
  printf 'glbox-error: %s\n' "another glbox bootstrap is running on this box; wait for it, then re-run"
  exit 1
fi

mkdir -p "$log_dir"
chmod 0750 "$log_dir"
# tee keeps writing the log even if whoever started us went away.
exec > >(tee --output-error=warn-nopipe -a "$log_dir/bootstrap.log") 2>&1

warnings=()
phase() { printf 'glbox-phase: %s\n' "$*"; }
warn() {
  printf 'warning: %s\n' "$*"
  warnings+=("$*")
}
fail() {
  printf 'glbox-error: %s\n' "$*"
  exit "${2:-1}"
}

case "$GLBOX_DATA_VOLUME" in
  vol-*[!0-9a-f]* | vol-) fail "unexpected data volume id $GLBOX_DATA_VOLUME" ;;
  vol-*) ;;
  *) fail "unexpected data volume id $GLBOX_DATA_VOLUME" ;;
esac
case "$data_size_gib" in
  '' | *[!0-9]*) fail "unexpected data volume size $data_size_gib" ;;
esac

# The package and its repository: cloud-init/package-source.sh.
[ -n "$family" ] || fail "unsupported OS $GLBOX_OS"

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

# series_lt A B: A's release series (major.minor) comes before B's.
series_lt() {
  version_lt "${1%.*}.0" "${2%.*}.0"
}

# The stops an upgrade from $1 to $2 installs before $2, one a line: those
# whose series lies strictly between (a box on a stop's series has reached
# it; a target in a stop's series is that stop's install). The same rule as
# glbox's src/upgrade_path.rs, which shows this path in the plan.
stops_between() {
  local from="$1" to="$2" stop
  for stop in $upgrade_stops; do
    if series_lt "$from" "$stop" && series_lt "$stop" "$to"; then
      printf '%s\n' "$stop"
    fi
  done
}

# gitlab-rake gitlab:background_migrations:status (gitlab-org/gitlab,
# lib/tasks/gitlab/background_migrations.rake, display_migration_status):
# a "Database: <name>" line per database, then "<status> | <job>" per
# batched background migration. Done means finished or finalized
# (doc/update/background_migrations.md: pending are those whose status is
# not 3 (finished) or 6 (finalized)); a failed one needs an administrator.
# Waits (bounded) until none is pending; $1 is the version they belong to
# (a stop, or the version running before the walk).
wait_for_background_migrations() {
  local version="$1" deadline=$((SECONDS + migrations_wait)) status pending
  while :; do
    status="$(gitlab-rake gitlab:background_migrations:status 2>&1)" ||
      fail "cannot read the background migrations' status of GitLab $version:
$status"
    if grep -q '^failed ' <<< "$status"; then
      fail "a batched background migration of GitLab $version failed, so the upgrade stops there:
$(grep '^failed ' <<< "$status")
  GitLab's doc/update/background_migrations.md says how to finish it; then run glbox up again (it resumes at $version)"
    fi
    pending="$(grep ' | ' <<< "$status" | grep -Evc '^(finished|finalized) ' || true)"
    [ "$pending" != 0 ] || return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "the background migrations of GitLab $version are still running after ${migrations_wait}s ($pending pending); GitLab keeps running them: run glbox up again later, it resumes at $version"
    fi
    echo "$pending background migration(s) of GitLab $version still running"
    sleep "$migrations_poll"
  done
}

# gitlab-ctl status: one "run: ..." line per service once GitLab is
# configured on this instance; nothing before the first reconfigure made
# the runit services (omnibus-gitlab's upgrade.rb reads it the same way).
services_status() {
  gitlab-ctl status 2> /dev/null || true
}

services_configured() {
  [ -n "$(services_status)" ]
}

services_running() {
  local status
  status="$(services_status)"
  [ -n "$status" ] && ! printf '%s\n' "$status" | grep -qv '^run: '
}

# Waits (bounded) for every service to show as running.
wait_for_services() {
  local waited=0
  until services_running; do
    if [ "$waited" -ge "$services_wait" ]; then
      return 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
}

# Omnibus turns Let's Encrypt on for an https URL unless gitlab.rb turns
# it off (files/gitlab-cookbooks/letsencrypt/libraries/lets_encrypt.rb,
# should_auto_enable?).
letsencrypt_active() {
  [ -n "$tls_host" ] && ! grep -Eq "^letsencrypt\['enable'\] *= *false" "$etc_gitlab/gitlab.rb"
}

certificate_self_signed() {
  local issuer subject
  issuer="$(openssl x509 -in "$tls_crt" -noout -issuer 2> /dev/null)" || return 1
  subject="$(openssl x509 -in "$tls_crt" -noout -subject)"
  [ "${issuer#issuer=}" = "${subject#subject=}" ]
}

certificate_issued() {
  [ -e "$tls_crt" ] && ! certificate_self_signed
}

# A self-signed certificate for the host, with the key Omnibus would use
# (made when missing, 0600).
make_placeholder_certificate() {
  local san="DNS:$tls_host"
  case "$tls_host" in *[!0-9.]*) ;; *) san="IP:$tls_host" ;; esac
  mkdir -p "$ssl_dir"
  chmod 0755 "$ssl_dir"
  if [ ! -e "$tls_key" ]; then
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tls_key" 2> /dev/null) ||
      fail "openssl could not make a key for the placeholder certificate of $tls_host"
  fi
  chmod 0600 "$tls_key"
  openssl req -x509 -new -key "$tls_key" -subj "/CN=$tls_host" -addext "subjectAltName=$san" \
    -days 365 -out "$tls_crt" ||
    fail "openssl could not make a placeholder certificate for $tls_host"
  chmod 0644 "$tls_crt"
  echo "self-signed placeholder certificate written to $tls_crt"
}

# Before GitLab is configured: the certificate nginx needs for https.
# With Let's Encrypt off Omnibus makes none (its only self-signed one is
# the Let's Encrypt placeholder, acme_selfsigned in
# files/gitlab-cookbooks/letsencrypt/recipes/enable.rb), so nginx cannot
# start: a placeholder stands in until a certificate is put there or
# Let's Encrypt is turned on. With Let's Encrypt on, the acme cookbook
# asks for a certificate only when the one there is missing or expires
# within 30 days (sous-chefs/acme, resources/certificate.rb), so a
# self-signed one is removed, and the reconfigure then asks.
prepare_certificate() {
  [ -n "$tls_host" ] || return 0
  if letsencrypt_active; then
    if [ -e "$tls_crt" ] && certificate_self_signed; then
      rm -f "$tls_crt" "$tls_key"
      touch "$pending"
      echo "self-signed certificate for $tls_host removed: the reconfigure asks Let's Encrypt for one"
    fi
    return 0
  fi
  [ -e "$tls_crt" ] || make_placeholder_certificate
  if certificate_self_signed; then
    warn "nginx serves a self-signed certificate for $tls_host (browsers warn about it): once public DNS points $tls_host at this box, glbox up turns Let's Encrypt on; or put your own certificate at $tls_crt and $tls_key"
  fi
}

# After the reconfigure: with Let's Encrypt on, a certificate that is
# still self-signed was not issued (the certificate step runs only once
# nginx is up: files/gitlab-cookbooks/letsencrypt/recipes/
# http_authorization.rb); asked for once more, then a clear failure. The
# certificate decides, not renew-le-certs's exit status: on a failed renewal
# files/gitlab-ctl-commands/letsencrypt.rb only prints an error.
require_issued_certificate() {
  letsencrypt_active || return 0
  certificate_issued && return 0
  phase "certificate: asking Let's Encrypt again for $tls_host"
  gitlab-ctl renew-le-certs || true
  certificate_issued ||
    fail "Let's Encrypt did not issue a certificate for $tls_host; nginx serves a self-signed one. Check that public DNS points $tls_host at this box and that ports 80 and 443 are open to the internet, then run glbox up again"
}

# What the bootstrap needs on Ubuntu, installed here rather than by
# cloud-init, which waits only 30 s for apt's lock
# (cloudinit/distros/package_management/apt.py, APT_LOCK_WAIT_TIMEOUT).
ubuntu_prerequisites() {
  local missing=() name
  for name in curl ca-certificates openssl perl tzdata; do
    if ! dpkg-query -W -f='${db:Status-Status}\n' "$name" 2> /dev/null | grep -qx installed; then
      missing+=("$name")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    phase "prerequisites"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  fi
}

# install_package VERSION [ROOT_PASSWORD]: EXTERNAL_URL (and the first-install
# values) go to this one command only: exported globally, EXTERNAL_URL would
# rewrite gitlab.rb on every later package operation. They are exported in
# a subshell, so the password never appears on a command line.
install_package() {
  local spec
  spec="$(package_spec "$1")"
  shift
  (
    if [ "$#" -gt 0 ]; then
      export GITLAB_ROOT_PASSWORD="$1"
      if [ -n "$root_email" ]; then
        export GITLAB_ROOT_EMAIL="$root_email"
      fi
    fi
    export EXTERNAL_URL="$GLBOX_EXTERNAL_URL"
    if [ "$family" = deb ]; then
      export DEBIAN_FRONTEND=noninteractive
      exec apt-get install -y "$spec"
    else
      exec dnf install -y "$spec"
    fi
  )
}

if [ -d "$cloud_init_run_dir" ] && command -v cloud-init > /dev/null; then
  phase "waiting for cloud-init"
  # Packages, the AWS CLI and the data volume come from first boot.
  timeout 1800 cloud-init status --wait > /dev/null || warn "cloud-init reported a problem; see /var/log/cloud-init-output.log"
fi

phase "data volume"
"$prepare_data" "$GLBOX_DATA_VOLUME" "$data_mountpoint" "$((data_size_gib * 1024))"
mkdir -p "$state_dir"
chmod 0700 "$state_dir"

phase "configuration"
# gitlab.rb first, so that the package's own reconfigure uses it.
mkdir -p "$etc_gitlab"
chmod 0775 "$etc_gitlab"
new_rb="$(mktemp)"
new_smtp="$(mktemp)"
trap 'rm -f "$new_rb" "$new_smtp"' EXIT
printf '%s' "$GLBOX_GITLAB_RB_B64" | base64 -d > "$new_rb"
# Your own settings (cloud-init/extra-config.sh): a gitlab.rb changed by
# hand stops here, before anything is written; then the secrets it reads.
guard_gitlab_rb "$new_rb"
write_secrets "$pending"
# The SMTP password goes to its own 0600 file, which gitlab.rb includes:
# it is written before gitlab.rb (a gitlab.rb naming a file a failed read
# never wrote would break every later reconfigure), and removed after.
smtp_include="$etc_gitlab/glbox-smtp-password.rb"
if [ -n "$smtp_parameter" ]; then
  smtp_password="$(aws ssm get-parameter --region "$GLBOX_REGION" \
    --name "$smtp_parameter" --with-decryption \
    --query Parameter.Value --output text)" ||
    fail "cannot read $smtp_parameter from SSM (does the instance role allow it?)"
  case "$smtp_password" in
    '' | *"'"* | *"\\"*) fail "the SMTP password in $smtp_parameter is not usable; run glbox email rotate" ;;
  esac
  # mktemp made the file 0600; printf is a builtin, so the password is never
  # on a command line.
  printf "gitlab_rails['smtp_password'] = '%s'\n" "$smtp_password" > "$new_smtp"
  unset smtp_password
  if ! cmp -s "$new_smtp" "$smtp_include"; then
    touch "$pending"
    install -m 0600 "$new_smtp" "$smtp_include"
    echo "SMTP password written"
  fi
fi
if ! cmp -s "$new_rb" "$etc_gitlab/gitlab.rb"; then
  touch "$pending"
  accept_gitlab_rb "$new_rb"
  install -m 0600 "$new_rb" "$etc_gitlab/gitlab.rb"
  echo "gitlab.rb written"
fi
record_gitlab_rb
if [ -z "$smtp_parameter" ] && [ -e "$smtp_include" ]; then
  rm -f "$smtp_include"
  touch "$pending"
  echo "SMTP password removed (email is off)"
fi
if [ -s "$state_dir/gitlab-secrets.json" ] && [ ! -e "$etc_gitlab/gitlab-secrets.json" ]; then
  install -m 0600 "$state_dir/gitlab-secrets.json" "$etc_gitlab/gitlab-secrets.json"
  echo "restored gitlab-secrets.json from the data volume"
fi

if [ "$family" = deb ]; then
  apt_wait_for_lock
  ubuntu_prerequisites
fi

# openssl makes and reads nginx's certificate; Amazon Linux may lack it.
# keepcache: without it, this transaction would drop the GitLab package the
# prefetch downloaded ("they will still persist until next successful
# transaction", dnf.conf(5)).
if [ -n "$tls_host" ] && [ "$family" = rpm ] && ! command -v openssl > /dev/null; then
  dnf install -y --setopt=keepcache=True openssl
fi
prepare_certificate

phase "repository"
fresh_repository=0
if [ ! -e "$repo_file" ]; then
  add_repository
  fresh_repository=1
fi

# The root password GitLab's first install seeds the database with.
read_root_password() {
  aws ssm get-parameter --region "$GLBOX_REGION" \
    --name "$GLBOX_ROOT_PASSWORD_PARAMETER" --with-decryption \
    --query Parameter.Value --output text
}
root_password_unreadable="cannot read $GLBOX_ROOT_PASSWORD_PARAMETER from SSM (does the instance role allow it?)"

# Fresh package lists, once, before an upgrade's install, or the first
# install from a repository this run did not add (the repository script
# fetches them) unless the prefetch downloaded that very package.
lists_fresh="$fresh_repository"
refresh_lists() {
  if [ "$family" = deb ] && [ "$lists_fresh" = 0 ]; then
    apt_update
    lists_fresh=1
  fi
}
# prefetched VERSION: did the first-boot prefetch download that version?
prefetched() {
  [ "$(cat "$prefetch_mark" 2> /dev/null)" = "$(package_spec "$1")" ]
}

# The version the data volume was last used with, and what happened to it
# (the resume point of an upgrade that did not finish).
record_version() {
  if [ "$(cat "$state_dir/installed-version" 2> /dev/null)" != "$1" ]; then
    printf '%s %s\n' "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$state_dir/version-history"
  fi
  printf '%s\n' "$1" > "$state_dir/installed-version"
}

# One required stop: installed, configured, its services running and its
# background migrations finished, then recorded on the data volume.
upgrade_stop() {
  local stop="$1"
  touch "$pending"
  if [ -z "$(installed_version)" ]; then
    # A new instance on old data: the package is not installed here yet.
    local root_password
    root_password="$(read_root_password)" || fail "$root_password_unreadable"
    prefetched "$stop" || refresh_lists
    install_package "$stop" "$root_password"
    unset root_password
  else
    refresh_lists
    install_package "$stop"
  fi
  [ "$(installed_version)" = "$stop" ] || fail "$package $stop was not installed at its upgrade stop"
  if [ "$family" = deb ] && services_configured; then
    rm -f "$pending"
  fi
  if [ -e "$pending" ] || ! services_configured; then
    gitlab-ctl reconfigure
    rm -f "$pending"
  fi
  wait_for_services || fail "GitLab's services are not running after upgrade stop $stop:
$(services_status)"
  wait_for_background_migrations "$stop"
  record_version "$stop"
}

phase "package"
current="$(installed_version)"
# The version the data was last used with (the data may outlive instances).
data_version="$(cat "$state_dir/installed-version" 2> /dev/null || true)"
# Where an upgrade starts: the installed version, or on a new instance the
# data's. "latest" never upgrades an installed GitLab by itself, but on a
# new instance with older data the newest comes after every stop since.
walk_from=""
walk_to="$GLBOX_VERSION"
if [ "$GLBOX_VERSION" != latest ]; then
  if [ -n "$current" ] && version_lt "$GLBOX_VERSION" "$current"; then
    fail "$package $current is installed; refusing to downgrade to $GLBOX_VERSION (GitLab does not support downgrades)" 3
  fi
  if [ -z "$current" ] && [ -n "$data_version" ] && version_lt "$GLBOX_VERSION" "$data_version"; then
    fail "the data volume was last used by $package $data_version; refusing to install the older $GLBOX_VERSION on it" 3
  fi
  walk_from="${current:-$data_version}"
elif [ -z "$current" ]; then
  walk_from="$data_version"
  walk_to=99999.0.0
fi
if [ -n "$walk_from" ] && version_lt "$walk_from" "$walk_to"; then
  mapfile -t stops < <(stops_between "$walk_from" "$walk_to")
  steps=$((${#stops[@]} + 1))
  if [ "${#stops[@]}" -gt 0 ]; then
    echo "upgrading $package $walk_from -> $GLBOX_VERSION through ${stops[*]}"
    # GitLab's upgrade path: the migrations of the version running now
    # finish before the next is installed.
    if [ -n "$current" ] && services_configured; then
      wait_for_services || fail "GitLab's services are not running before the upgrade:
$(services_status)"
      wait_for_background_migrations "$current"
    fi
  fi
  step=0
  for stop in "${stops[@]}"; do
    step=$((step + 1))
    phase "upgrade stop $stop ($step of $steps)"
    upgrade_stop "$stop"
  done
  if [ "${#stops[@]}" -gt 0 ]; then
    phase "upgrade to $GLBOX_VERSION ($steps of $steps)"
  fi
  current="$(installed_version)"
fi
package_changed=0
if [ -z "$current" ]; then
  root_password="$(read_root_password)" || fail "$root_password_unreadable"
  if prefetched "$GLBOX_VERSION"; then
    echo "installing $(package_spec "$GLBOX_VERSION"), downloaded at first boot"
  else
    refresh_lists
    echo "installing $(package_spec "$GLBOX_VERSION")"
  fi
  touch "$pending"
  install_package "$GLBOX_VERSION" "$root_password"
  unset root_password
  package_changed=1
elif [ "$GLBOX_VERSION" != "$current" ] && { [ "$GLBOX_VERSION" != latest ] || [ "$walk_to" != latest ]; }; then
  refresh_lists
  echo "upgrading $package $current -> $GLBOX_VERSION"
  touch "$pending"
  install_package "$GLBOX_VERSION"
  package_changed=1
else
  echo "$package $current is installed"
fi

# apt fails when the package's own reconfigure fails, so a successful deb
# install or upgrade that left GitLab configured has reconfigured; dnf
# does not report a failed one reliably.
if [ "$package_changed" = 1 ] && [ "$family" = deb ] && services_configured; then
  rm -f "$pending"
fi
# No services on this instance: GitLab was never configured here. The
# package's own script skips that when it finds /var/opt/gitlab/bootstrapped
# from an earlier instance on the data volume (omnibus-gitlab,
# files/gitlab-ctl-commands/upgrade.rb: "It looks like GitLab has not been
# configured yet; skipping the upgrade script", exit 0).
if ! services_configured; then
  touch "$pending"
fi
if [ -e "$pending" ]; then
  phase "reconfigure"
  gitlab-ctl reconfigure
  rm -f "$pending"
fi

phase "services"
wait_for_services || fail "GitLab's services are not running after the bootstrap:
$(services_status)"
require_issued_certificate

version="$(installed_version)"
[ -z "$version" ] || record_version "$version"
if [ -e "$etc_gitlab/gitlab-secrets.json" ]; then
  install -m 0600 "$etc_gitlab/gitlab-secrets.json" "$state_dir/gitlab-secrets.json"
fi
# Done means what the next instance needs is on the data volume.
if [ -z "$version" ] || [ "$(cat "$state_dir/installed-version")" != "$version" ]; then
  fail "the installed version was not recorded on the data volume"
fi
cmp -s "$etc_gitlab/gitlab-secrets.json" "$state_dir/gitlab-secrets.json" ||
  fail "gitlab-secrets.json was not copied to the data volume"

# GitLab backups to S3 (cloud-init/backup-schedule.sh): the nightly timer
# installed, updated or removed per backup.s3.
phase "backup schedule"
backup_schedule

# Repeat the warnings at the end, where glbox reads them.
for warning in "${warnings[@]}"; do
  printf 'glbox-warning: %s\n' "$warning"
done
printf 'glbox-result: %s %s\n' "$package" "$version"
