//! A sandbox for the bootstrap script: stub package managers, AWS CLI and
//! gitlab-ctl earlier on PATH record every call, and the script's paths
//! point into a temporary folder.
//!
//! The stubs follow the real programs' rules where glbox depends on them
//! (each names its source). What belongs to one instance (its root disk:
//! /etc/gitlab, the installed package, the runit services, the package
//! manager's configuration) lives under `$SANDBOX`; the data volume is the
//! directory mounted at `$GLBOX_DATA_MOUNTPOINT`, so a test can give the
//! same data to a new instance (`Sandbox::new_instance`). Switches that
//! tests set (files such as `gitlab-ctl-fails`) live in `$SANDBOX_ROOT`.
//!
//! `bin/sandbox-instance INSTANCE_ID COMMAND` runs COMMAND with `sh -c`
//! (as the SSM agent does) on instance INSTANCE_ID of a sandbox holding
//! many: its own state under `instances/<id>/`, the data volumes under
//! `volumes/<vol-id>/`, "mounted" by the prepare-data stub.

use std::path::PathBuf;
use std::process::{Command, Output};

pub const ROOT_PASSWORD: &str = "Sandbox-Root-Password-1";
/// What the `aws` stub answers for the SMTP password parameter, unless a
/// test writes another into `$SANDBOX/smtp-password`.
pub const SMTP_PASSWORD: &str = "BMXhUYlu5Z3gSXVQORxlVa7XPaz91aGWdfHxvkOZdWZ2";

/// The sub-directories of `$SANDBOX` that stand for one instance's root disk.
const INSTANCE_DIRS: &[&str] = &[
    "etc-gitlab",
    "apt",
    "apt-conf",
    "yum",
    "log",
    "lock",
    "run",
    "sbin",
    "systemd",
    "package-cache",
    "var-lib-glbox",
];

/// Omnibus GitLab's package scripts and `gitlab-ctl`, as far as glbox
/// relies on them; sourced by the apt-get, dnf and gitlab-ctl stubs.
/// Every reconfigure, whoever runs it, adds a `reconfigure-run by=...`
/// line to calls.log.
const OMNIBUS: &str = r#"
data="$GLBOX_DATA_MOUNTPOINT"
. "$SANDBOX_ROOT/lib/upgrade.sh"
services_dir="$SANDBOX/services"

# omnibus-ctl `gitlab-ctl status`: one line per runit service of this
# instance; nothing at all before the first reconfigure made them.
omnibus_status() {
  local sv
  [ -d "$services_dir" ] || return 0
  for sv in "$services_dir"/*; do
    [ -e "$sv" ] || continue
    if [ "$(cat "$sv")" = run ]; then
      echo "run: ${sv##*/}: (pid 1234) 345s; run: log: (pid 1200) 400s"
    else
      echo "down: ${sv##*/}: 10s, normally up; run: log: (pid 1200) 400s"
    fi
  done
}

# The external URL's parts as the cookbooks read them (URI(external_url)).
omnibus_url() { awk '/^external_url/ { print $2 }' "$GLBOX_ETC_GITLAB/gitlab.rb" 2>/dev/null | tr -d "'\""; }
omnibus_host() { local host; host="$(omnibus_url)"; host="${host#*://}"; host="${host%%/*}"; echo "${host%%:*}"; }
omnibus_https() { case "$(omnibus_url)" in https://*) return 0 ;; esac; return 1; }

# files/gitlab-cookbooks/letsencrypt/libraries/lets_encrypt.rb
# (should_auto_enable?): an https external_url turns Let's Encrypt on
# unless gitlab.rb says letsencrypt['enable'] = false.
omnibus_letsencrypt_active() {
  omnibus_https && ! grep -Eq "^letsencrypt\['enable'\] *= *false" "$GLBOX_ETC_GITLAB/gitlab.rb"
}

# nginx's certificate: gitlab_rails['nginx']['ssl_certificate'] defaults
# to /etc/gitlab/ssl/<host>.crt and ssl_certificate_key to <host>.key
# (files/gitlab-cookbooks/gitlab/libraries/gitlab_rails.rb; omnibus-gitlab
# doc/settings/ssl/_index.md, "Configure HTTPS manually").
omnibus_crt() { echo "$GLBOX_ETC_GITLAB/ssl/$(omnibus_host).crt"; }
omnibus_key() { echo "$GLBOX_ETC_GITLAB/ssl/$(omnibus_host).key"; }

# The ACME server (Let's Encrypt) as a sandbox CA: what it "issues" is
# signed by that CA, so its issuer is not its subject.
omnibus_issue_certificate() {
  local ca="$SANDBOX_ROOT/acme-ca" crt key host
  crt="$(omnibus_crt)" key="$(omnibus_key)" host="$(omnibus_host)"
  if [ ! -e "$ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=Sandbox ACME CA" -keyout "$ca.key" -out "$ca.crt" 2>/dev/null
  fi
  [ -e "$key" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$key" 2>/dev/null
  openssl req -new -key "$key" -subj "/CN=$host" 2>/dev/null |
    openssl x509 -req -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 90 -out "$crt" 2>/dev/null
  echo "acme-issued $host" >> "$SANDBOX/calls.log"
}

# The letsencrypt cookbook's certificate step, with the acme cookbook's
# rule for when it asks the ACME server at all (sous-chefs/acme, formerly
# schubergphilis/chef-acme, resources/certificate.rb: only when the
# certificate is missing, expires within node['acme']['renew'] days (30),
# or its names changed; omnibus-gitlab doc/settings/ssl/_index.md: "The
# certificate is renewed only if it expires in 30 days"). The ACME server
# validates the name over HTTP-01: it must resolve to the box, ports 80
# and 443 open ($SANDBOX_ROOT/dns-resolves says so). Names are not compared here.
omnibus_letsencrypt_certificate() {
  local crt
  crt="$(omnibus_crt)"
  if [ -e "$crt" ] && openssl x509 -in "$crt" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
    return 0
  fi
  if [ ! -e "$SANDBOX_ROOT/dns-resolves" ]; then
    echo "letsencrypt_certificate[gitlab] (letsencrypt::http_authorization line 6) had an error: RuntimeError: acme_certificate[staging] had an error: Acme::Client::Error::RejectedIdentifier: Validation failed, unable to request certificate (DNS problem: NXDOMAIN looking up A)"
    return 1
  fi
  omnibus_issue_certificate
}

# files/gitlab-cookbooks/letsencrypt/recipes/enable.rb: before asking
# for a certificate, acme_selfsigned writes a placeholder so nginx can
# start, only_if the certificate file is missing; the acme cookbook's
# self_signed_cert (libraries/acme.rb) makes it valid for
# node['acme']['renew'] days, so it is inside the renewal window at once.
omnibus_acme_selfsigned() {
  local crt key
  crt="$(omnibus_crt)" key="$(omnibus_key)"
  [ ! -e "$crt" ] || return 0
  mkdir -p "${crt%/*}"
  [ -e "$key" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$key" 2>/dev/null
  openssl req -x509 -new -key "$key" -subj "/CN=$(omnibus_host)" -days 30 -out "$crt" 2>/dev/null
}

# `gitlab-ctl renew-le-certs` (files/gitlab-ctl-commands/letsencrypt.rb):
# refuses unless Let's Encrypt is enabled, then runs the same certificate
# step (which again asks only for a missing or expiring certificate).
omnibus_renew_le_certs() {
  if ! omnibus_letsencrypt_active; then
    echo 'LetsEncrypt is not enabled in your gitlab.rb. Have you run "gitlab-ctl reconfigure" yet?' >&2
    return 1
  fi
  omnibus_letsencrypt_certificate || {
    echo "There was an error renewing Let's Encrypt certificates, please checkout the output" >&2
    return 1
  }
}

# `gitlab-ctl reconfigure` (the gitlab cookbook): fails when a test says
# so, or like the letsencrypt cookbook when Let's Encrypt is on and its
# HTTP-01 challenge cannot reach the box; creates GitLab's secrets when
# there are none, `bootstrapped` on the data volume
# (files/gitlab-cookbooks/gitlab/recipes/bootstrap.rb) and the services.
# nginx (on by default) serves an https URL with the certificate above;
# with Let's Encrypt off Omnibus makes none, so without the files nginx
# cannot start and stays down.
omnibus_reconfigure() {
  echo "reconfigure-run by=$1" >> "$SANDBOX/calls.log"
  if [ -e "$SANDBOX_ROOT/gitlab-ctl-fails" ]; then
    echo "There was an error running gitlab-ctl reconfigure"
    return 1
  fi
  if omnibus_letsencrypt_active; then
    omnibus_acme_selfsigned
    # A test says nginx was not up yet at the certificate step
    # ($SANDBOX_ROOT/nginx-late): http_authorization.rb skips the
    # certificate then (only_if service_up?('nginx')), the run succeeds.
    if [ ! -e "$SANDBOX_ROOT/nginx-late" ] && ! omnibus_letsencrypt_certificate; then
      echo "There was an error running gitlab-ctl reconfigure"
      return 1
    fi
  fi
  upgrade_db_migrate || {
    echo "There was an error running gitlab-ctl reconfigure"
    return 1
  }
  [ -e "$GLBOX_ETC_GITLAB/gitlab-secrets.json" ] ||
    echo "secrets-$RANDOM$RANDOM" > "$GLBOX_ETC_GITLAB/gitlab-secrets.json"
  touch "$data/bootstrapped"
  mkdir -p "$services_dir"
  # A test names services that stay down in $SANDBOX_ROOT/services-down.
  local sv state
  for sv in puma sidekiq nginx; do
    state=run
    if grep -qx "$sv" "$SANDBOX_ROOT/services-down" 2>/dev/null; then state=down; fi
    if [ "$sv" = nginx ] && omnibus_https && { [ ! -e "$(omnibus_crt)" ] || [ ! -e "$(omnibus_key)" ]; }; then
      state=down
    fi
    echo "$state" > "$services_dir/$sv"
  done
}

# `gitlab-ctl upgrade` (files/gitlab-ctl-commands/upgrade.rb): a fresh
# install (no bootstrapped file on /var/opt/gitlab, an external URL given)
# reconfigures; without runit services it says GitLab is not configured
# and exits 0 WITHOUT configuring; otherwise it reconfigures (the upgrade).
omnibus_upgrade() {
  if [ ! -e "$data/bootstrapped" ] && [ -n "${EXTERNAL_URL:-}" ] && [ "$EXTERNAL_URL" != http://gitlab.example.com ]; then
    omnibus_reconfigure package
    return
  fi
  if [ -z "$(omnibus_status)" ]; then
    echo "It looks like GitLab has not been configured yet; skipping the upgrade script."
    return 0
  fi
  omnibus_reconfigure package || {
    echo "There was an error running gitlab-ctl reconfigure. Please check the output above for more details."
    return 1
  }
}

# The packages' scripts: the deb's postinst runs `gitlab-ctl upgrade` and
# fails the install with it (config/templates/package-scripts/postinst.erb);
# the rpm's %posttrans runs it with the URL read back from gitlab.rb
# (posttrans.erb), and a %posttrans failure does not fail the transaction.
omnibus_package_script() {
  local family="$1"
  if [ "$family" = rpm ] && [ -e "$GLBOX_ETC_GITLAB/gitlab.rb" ]; then
    EXTERNAL_URL="$(awk '/^external_url/ { print $2 }' "$GLBOX_ETC_GITLAB/gitlab.rb" | tr -d "'\"")"
  fi
  echo "package script: gitlab-ctl upgrade" >> "$SANDBOX/calls.log"
  if [ "$family" = deb ]; then
    omnibus_upgrade
  else
    omnibus_upgrade || echo "warning: %posttrans scriptlet failed, exit status 1"
  fi
}
"#;

/// apt's dpkg frontend lock: taken by every apt-get that changes packages
/// (not by `update`, which takes only the lists lock: see the comment on
/// APT_LOCK_FILES in cloud-init's cloudinit/distros/package_management/
/// apt.py). At first boot unattended-upgrades holds it for minutes; a
/// test says so with the switch `$SANDBOX_ROOT/apt-locked`. apt-get then
/// fails at once with apt's own message, unless `DPkg::Lock::Timeout` is
/// set (apt >= 1.9.11; on the command line with -o, or in a file of
/// apt.conf.d, apt.conf(5)): then it waits that long for the lock.
const APT_LOCK: &str = r#"
apt_lock_timeout() {
  local timeout=0 file prev="" arg value
  for file in "${APT_CONFIG:-}" "$GLBOX_APT_CONF_DIR"/*; do
    [ -f "$file" ] || continue
    value="$(grep -io 'dpkg::lock::timeout *"[0-9]*"' "$file" | grep -o '[0-9]*' | tail -n 1)"
    [ -z "$value" ] || timeout="$value"
  done
  for arg in "$@"; do
    if [ "$prev" = -o ]; then
      case "${arg,,}" in dpkg::lock::timeout=*) timeout="${arg#*=}" ;; esac
    fi
    prev="$arg"
  done
  echo "$timeout"
}

apt_take_lock() {
  local tenths=0 limit
  limit=$(( $(apt_lock_timeout "$@") * 10 ))
  while [ -e "$SANDBOX_ROOT/apt-locked" ]; do
    if [ "$tenths" -ge "$limit" ]; then
      echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1811 (unattended-upgr)" >&2
      echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
      exit 100
    fi
    [ "$tenths" -gt 0 ] || echo "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1811 (unattended-upgr)"
    sleep 0.1
    tenths=$((tenths + 1))
  done
}
"#;

// ---- upgrades (the upgrade path) ----

/// An upgrade's database side, as far as the walk through GitLab's
/// required stops relies on it. The database lives on the data volume
/// (PostgreSQL's data is under /var/opt/gitlab): `.sandbox-schema` holds
/// the version that last migrated it, `.sandbox-bbm-pending` how many more
/// status polls its batched background migrations stay unfinished.
/// Switches: `$SANDBOX_ROOT/install-fails-at` (a version the repository
/// lacks: fetching it fails, see PACKAGE_CACHE), `$SANDBOX_ROOT/bbm-polls` (polls until finished after an upgrade,
/// default 2), `$SANDBOX_ROOT/bbm-failed` (a version whose migration ends `failed`).
const UPGRADE: &str = r#"
upgrade_data="$GLBOX_DATA_MOUNTPOINT"

upgrade_major() { echo "${1%%.*}"; }

# The package's preinst runs `gitlab-ctl upgrade-check OLD NEW`
# (omnibus-gitlab files/gitlab-ctl-commands/upgrade_check.rb,
# config/templates/package-scripts/preinst.erb): a new major version
# needs the previous major's last minor first (16.11 before 17, 17.11
# before 18), else the install fails and nothing changes.
upgrade_preinstall() {
  local new="$1" old minimum
  echo "package install $new" >> "$SANDBOX/calls.log"
  old="$(cat "$SANDBOX/installed" 2>/dev/null || true)"
  [ -n "$old" ] || return 0
  [ "$(upgrade_major "$new")" -gt "$(upgrade_major "$old")" ] || return 0
  minimum="$(( $(upgrade_major "$new") - 1 )).11"
  if [ "$(printf '%s
%s
' "$minimum.0" "$old" | sort -V | head -n 1)" != "$minimum.0" ]; then
    echo "It seems you are upgrading from $old to $new."
    echo "It is required to upgrade to the latest $minimum.x version first before proceeding."
    return 1
  fi
}

# The reconfigure's db:migrate. A migration that needs an earlier batched
# background migration finished fails while it is not
# (ensure_batched_background_migration_is_finished in gitlab-org/gitlab
# lib/gitlab/database/migrations/batched_background_migration_helpers.rb:
# "Expected batched background migration for the given configuration to
# be marked as 'finished', but it is 'active'"); an upgrade queues new
# ones, which Sidekiq then runs for a while.
upgrade_db_migrate() {
  local installed schema pending
  installed="$(cat "$SANDBOX/installed" 2>/dev/null || true)"
  schema="$(cat "$upgrade_data/.sandbox-schema" 2>/dev/null || true)"
  pending="$(cat "$upgrade_data/.sandbox-bbm-pending" 2>/dev/null || echo 0)"
  [ -n "$installed" ] && [ "$installed" != "$schema" ] || return 0
  if [ -n "$schema" ] && [ "$pending" -gt 0 ]; then
    echo "StandardError: An error has occurred, all later migrations canceled:"
    echo "Expected batched background migration for the given configuration to be marked as 'finished', but it is 'active'"
    return 1
  fi
  echo "db-migrate ${schema:-none} -> $installed" >> "$SANDBOX/calls.log"
  echo "$installed" > "$upgrade_data/.sandbox-schema"
  if [ -n "$schema" ]; then
    cat "$SANDBOX_ROOT/bbm-polls" 2>/dev/null > "$upgrade_data/.sandbox-bbm-pending" || echo 2 > "$upgrade_data/.sandbox-bbm-pending"
  fi
}

# `gitlab-rake gitlab:background_migrations:status` (gitlab-org/gitlab
# lib/tasks/gitlab/background_migrations.rake, display_migration_status):
# "Database: <name>", then "<status> | <job class>,<table>,<column>,<args>".
upgrade_migrations_status() {
  local pending
  echo "gitlab-rake gitlab:background_migrations:status schema=$(cat "$upgrade_data/.sandbox-schema" 2>/dev/null)" >> "$SANDBOX/calls.log"
  pending="$(cat "$upgrade_data/.sandbox-bbm-pending" 2>/dev/null || echo 0)"
  echo "Database: main"
  echo "finished   | Gitlab::BackgroundMigration::BackfillProjectNamespaces,projects,id,[]"
  if [ "$(cat "$SANDBOX_ROOT/bbm-failed" 2>/dev/null)" = "$(cat "$upgrade_data/.sandbox-schema" 2>/dev/null)" ]; then
    echo "failed     | Gitlab::BackgroundMigration::BackfillCiPipelineMessages,ci_pipeline_messages,id,[]"
  elif [ "$pending" -gt 0 ]; then
    echo $((pending - 1)) > "$upgrade_data/.sandbox-bbm-pending"
    echo "active     | Gitlab::BackgroundMigration::BackfillCiPipelineMessages,ci_pipeline_messages,id,[]"
  fi
  echo "Database: ci"
  echo "finalized  | Gitlab::BackgroundMigration::BackfillCiBuildsPartitionId,p_ci_builds,id,[]"
}
"#;

/// The package managers' cache of downloaded packages, one file per
/// version in `$SANDBOX/package-cache`. `apt-get install --download-only`
/// (`-d`) "Download only; package files are only retrieved, not unpacked
/// or installed" into /var/cache/apt/archives, and a later install uses a
/// package already there (apt-get(8), -d and FILES). `dnf install
/// --downloadonly` downloads "without performing any rpm transaction"
/// (dnf(8)), and with keepcache off such packages "will still persist
/// until next successful transaction" (dnf.conf(5), keepcache), which
/// installs from them. A download says `package download VERSION` in
/// calls.log; an install from the cache says nothing more. The switch
/// `$SANDBOX_ROOT/offline` makes packages.gitlab.com unreachable.
const PACKAGE_CACHE: &str = r#"
# package_fetch VERSION DOWNLOAD_ONLY(0|1) FAILED_STATUS: what a package
# manager's download does; exits for a download-only call, and with
# FAILED_STATUS for a version the repository lacks.
package_fetch() {
  if [ "$(cat "$SANDBOX_ROOT/install-fails-at" 2>/dev/null)" = "$1" ]; then
    echo "E: Version '$1-ce.0' for 'gitlab-ce' was not found" >&2
    exit "$3"
  fi
  if [ ! -e "$SANDBOX/package-cache/$1" ]; then
    if [ -e "$SANDBOX_ROOT/offline" ]; then
      echo "E: Failed to fetch https://packages.gitlab.com/gitlab/gitlab-ce/pool/gitlab-ce_$1-ce.0_amd64.deb  Could not resolve 'packages.gitlab.com'" >&2
      exit 100
    fi
    echo "package download $1" >> "$SANDBOX/calls.log"
    touch "$SANDBOX/package-cache/$1"
  fi
  [ "$2" = 0 ] || exit 0
}
"#;

/// Stubs append "<command> <args> [env markers]" to $SANDBOX/calls.log
/// (calls made by the repository script say so first). The installed
/// version lives in $SANDBOX/installed.
pub const STUBS: &[(&str, &str)] = &[
    (
        "apt-get",
        r#"echo "${SANDBOX_CALLER:+$SANDBOX_CALLER: }apt-get $* EXTERNAL_URL=${EXTERNAL_URL:-} password=${GITLAB_ROOT_PASSWORD:+set} email=${GITLAB_ROOT_EMAIL:-}" >> "$SANDBOX/calls.log"
. "$SANDBOX_ROOT/lib/apt-lock.sh"
. "$SANDBOX_ROOT/lib/omnibus.sh"
. "$SANDBOX_ROOT/lib/package-cache.sh"
command="" prev="" download_only=0
for arg in "$@"; do
  if [ "$prev" != -o ] && [ -z "$command" ] && [ "${arg#-}" = "$arg" ]; then command="$arg"; fi
  case "$arg" in -d | --download-only) download_only=1 ;; esac
  prev="$arg"
done
# The lists lock (apt-pkg/acquire.cc GetLock: no timeout): while another
# `apt-get update` holds it ($SANDBOX_ROOT/apt-lists-locked), update fails at once.
if [ "$command" = update ] && [ -e "$SANDBOX_ROOT/apt-lists-locked" ]; then
  echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1700 (apt-get)" >&2
  echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
  exit 100
fi
[ "$command" = update ] || apt_take_lock "$@"
[ "$command" = install ] || exit 0
spec="${*: -1}"
case "$spec" in
  gitlab-*=*) version="${spec#*=}"; version="${version%%-*}" ;;
  gitlab-*) version=18.6.0 ;;
  *) exit 0 ;;
esac
package_fetch "$version" "$download_only" 100
upgrade_preinstall "$version" || exit 100
echo "$version" > "$SANDBOX/installed"
# A slow install (seconds in $SANDBOX_ROOT/slow-install), for tests that
# send other commands meanwhile.
[ ! -s "$SANDBOX_ROOT/slow-install" ] || sleep "$(cat "$SANDBOX_ROOT/slow-install")"
omnibus_package_script deb"#,
    ),
    (
        "dnf",
        r#"echo "dnf $* EXTERNAL_URL=${EXTERNAL_URL:-} password=${GITLAB_ROOT_PASSWORD:+set}" >> "$SANDBOX/calls.log"
. "$SANDBOX_ROOT/lib/omnibus.sh"
. "$SANDBOX_ROOT/lib/package-cache.sh"
[ "$1" = install ] || exit 0
download_only=0
for arg in "$@"; do [ "$arg" != --downloadonly ] || download_only=1; done
spec="${*: -1}"
case "$spec" in
  gitlab-e?-*) version="${spec#gitlab-e?-}" ;;
  gitlab-*) version=18.6.0 ;;
  *)
    # Any other successful transaction drops what was only downloaded,
    # unless the cache is kept (dnf.conf(5), keepcache).
    case "$*" in *keepcache=True* | *keepcache=1*) ;; *) rm -f "$SANDBOX/package-cache/"* ;; esac
    exit 0 ;;
esac
package_fetch "$version" "$download_only" 1
upgrade_preinstall "$version" || exit 1
echo "$version" > "$SANDBOX/installed"
omnibus_package_script rpm
exit 0"#,
    ),
    (
        "dpkg-query",
        r#"package="${*: -1}"
case "$package" in
  gitlab-*) ;;
  *)
    # Other packages are there, unless a test lists them as missing.
    if grep -qx "$package" "$SANDBOX_ROOT/missing-packages" 2>/dev/null; then
      echo "dpkg-query: no packages found matching $package" >&2
      exit 1
    fi
    echo "installed"
    exit 0 ;;
esac
[ -s "$SANDBOX/installed" ] || exit 1
case "$*" in
  *db:Status-Abbrev*) echo "ii  $(cat "$SANDBOX/installed")-ce.0" ;;
  *db:Status*) echo "installed $(cat "$SANDBOX/installed")-ce.0" ;;
  *) echo "$(cat "$SANDBOX/installed")-ce.0" ;;
esac"#,
    ),
    (
        "rpm",
        r#"[ -s "$SANDBOX/installed" ] || { echo "package is not installed"; exit 1; }
cat "$SANDBOX/installed""#,
    ),
    (
        "curl",
        r#"echo "curl $*" >> "$SANDBOX/calls.log"
case "$*" in
  *packages.gitlab.com*)
    if [ -e "$SANDBOX_ROOT/offline" ]; then
      echo "curl: (6) Could not resolve host: packages.gitlab.com" >&2
      exit 6
    fi ;;&
  *packages.gitlab.com*script.deb.sh*)
    # packagecloud's script.deb.sh, as packages.gitlab.com serves it: plain
    # apt-get calls (no lock option of its own; it does not check whether
    # installing apt-transport-https worked), then the source list.
    cat <<'SCRIPT'
export SANDBOX_CALLER=repository-script
apt-get update
apt-get install -y apt-transport-https
touch "$GLBOX_APT_SOURCES/gitlab_gitlab-ce.list" "$GLBOX_YUM_REPOS/gitlab_gitlab-ee.repo"
apt-get update
SCRIPT
    exit 0 ;;
  *packages.gitlab.com*)
    echo 'touch "$GLBOX_APT_SOURCES/gitlab_gitlab-ce.list" "$GLBOX_YUM_REPOS/gitlab_gitlab-ee.repo"'
    exit 0 ;;
esac
# A health endpoint: answers from $SANDBOX_ROOT/http/<name>.{code,body},
# else healthy ones; <name>.fail-times makes the first N answers a 502.
out=""; prev=""
for arg in "$@"; do [ "$prev" = -o ] && out="$arg"; prev="$arg"; done
url="${*: -1}"; name="${url##*/-/}"; name="${name%%\?*}"
dir="$SANDBOX_ROOT/http"
if [ -s "$dir/$name.fail-times" ] && [ "$(cat "$dir/$name.fail-times")" -gt 0 ]; then
  echo $(( $(cat "$dir/$name.fail-times") - 1 )) > "$dir/$name.fail-times"
  printf 'Bad Gateway' > "$out"; printf '502'; exit 0
fi
if [ -e "$dir/$name.code" ]; then
  cat "$dir/$name.body" > "$out" 2>/dev/null || : > "$out"; cat "$dir/$name.code"; exit 0
fi
case "$name" in
  liveness) printf '{"status":"ok"}' > "$out" ;;
  readiness) printf '{"status":"ok","master_check":[{"status":"ok"}],"db_check":[{"status":"ok"}]}' > "$out" ;;
  health) printf 'GitLab OK' > "$out" ;;
esac
printf '200'"#,
    ),
    (
        "aws",
        r#"echo "aws $*" >> "$SANDBOX/calls.log"
# S3 is a directory per bucket (see BACKUP_STUBS).
case "$1" in
  s3 | s3api)
    . "$SANDBOX_ROOT/lib/s3.sh"
    . "$SANDBOX_ROOT/lib/crash-after.sh"
    s3_main "$@" || exit
    crash_after aws "$@"
    exit ;;
esac
# Backed by the emulator when a test says where it is: the parameter is
# read for real (decrypted) with boto3 from the emulator's Python.
if [ -n "${SANDBOX_AWS_ENDPOINT:-}" ]; then
  region="" name=""
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --region) region="$2"; shift ;;
      --name) name="$2"; shift ;;
    esac
    shift
  done
  exec "$SANDBOX_PYTHON" -c 'import sys, boto3
ssm = boto3.client("ssm", region_name=sys.argv[1], endpoint_url=sys.argv[3], aws_access_key_id="testing", aws_secret_access_key="testing")
print(ssm.get_parameter(Name=sys.argv[2], WithDecryption=True)["Parameter"]["Value"])' "$region" "$name" "$SANDBOX_AWS_ENDPOINT"
fi
case "$*" in
  # Secrets for gitlab.extra_config (tests/it/extra_config.rs): the value
  # in $SANDBOX_ROOT/secrets/<name>, printed as `--output text` prints a
  # string (with a line end); a missing one fails as the CLI does
  # (exit 254, ParameterNotFound on stderr).
  */secrets/*)
    name="$*"; name="${name##*/secrets/}"; name="${name%% *}"
    if [ ! -e "$SANDBOX_ROOT/secrets/$name" ]; then
      echo "An error occurred (ParameterNotFound) when calling the GetParameter operation: Parameter not found" >&2
      exit 254
    fi
    printf '%s\n' "$(cat "$SANDBOX_ROOT/secrets/$name")" ;;
  *smtp-password*) cat "$SANDBOX_ROOT/smtp-password" ;;
  *) echo "Sandbox-Root-Password-1" ;;
esac"#,
    ),
    (
        "gitlab-ctl",
        r#"# Queries are not recorded (like dpkg-query's), changes are.
[ "$1" = status ] || echo "gitlab-ctl $* EXTERNAL_URL=${EXTERNAL_URL:-}" >> "$SANDBOX/calls.log"
. "$SANDBOX_ROOT/lib/omnibus.sh"
case "$1" in
  status) omnibus_status ;;
  reconfigure) omnibus_reconfigure gitlab-ctl ;;
  upgrade) omnibus_upgrade ;;
  renew-le-certs) omnibus_renew_le_certs ;;
  stop | start | restart) . "$SANDBOX_ROOT/lib/backup.sh"; omnibus_service_control "$@" ;;
esac
status=$?
. "$SANDBOX_ROOT/lib/crash-after.sh"
[ "$status" != 0 ] || crash_after gitlab-ctl "$@"
exit "$status""#,
    ),
    (
        "findmnt",
        r#"case "$*" in
  *--target*) cat "$SANDBOX_ROOT/findmnt-data" 2>/dev/null || echo "/dev/nvme1n1 ext4 98.1G 90.2G" ;;
  *) echo "/dev/nvme0n1p1" ;;
esac"#,
    ),
    (
        "gitlab-rake",
        r#"if [ "$1" = gitlab:background_migrations:status ]; then
  . "$SANDBOX_ROOT/lib/upgrade.sh"
  upgrade_migrations_status
  exit
fi
echo "gitlab-rake $*" >> "$SANDBOX/calls.log"
echo "Checking GitLab subtasks ..."
echo "All migrations up? ... yes"
# lib/tasks/gitlab/check.rake (Sidekiq: "Running? ... yes|no"), read from
# the runit service's state.
if [ -e "$SANDBOX/services/sidekiq" ]; then
  [ "$(cat "$SANDBOX/services/sidekiq")" = run ] && echo "Running? ... yes" || echo "Running? ... no"
fi
cat "$SANDBOX_ROOT/gitlab-check" 2>/dev/null || true
. "$SANDBOX_ROOT/lib/crash-after.sh"
crash_after gitlab-rake "$@""#,
    ),
    ("swapon", r#"echo "/swapfile 2147483648""#),
    (
        "gitlab-rails",
        r#"echo "gitlab-rails $*" >> "$SANDBOX/calls.log"
# A test makes the mail fail by writing the error into this file.
if [ -e "$SANDBOX_ROOT/mail-fails" ]; then
  cat "$SANDBOX_ROOT/mail-fails"
  exit 1
fi"#,
    ),
    (
        "cloud-init",
        r#"echo "cloud-init $*" >> "$SANDBOX/calls.log""#,
    ),
    (
        "glbox-prepare-data",
        r#"echo "glbox-prepare-data $*" >> "$SANDBOX/calls.log"
# In a sandbox of many instances, the named volume's directory is
# "mounted" (linked) at the mount point.
if [ -n "${SANDBOX_VOLUMES:-}" ]; then
  mkdir -p "$SANDBOX_VOLUMES/$1"
  ln -sfn "$SANDBOX_VOLUMES/$1" "$2"
fi"#,
    ),
    // The restore's stubs: the data volume "mounted" by the prepare-data
    // stub is a link at the mount point. `mountpoint -q DIR` (util-linux)
    // says whether it is there; `umount DIR` removes it, fails with
    // umount's "not mounted" (exit 32) when it is not, and with "target is
    // busy" when a test says so ($SANDBOX_ROOT/umount-busy). A real file
    // system (the loop-device tests run the real prepare-data script) is
    // left to the real programs, found on PATH after this folder.
    (
        "mountpoint",
        r#"target="${*: -1}"
[ -L "$target" ] && exit 0
mountpoint_real="$(PATH="${PATH#*:}" command -v mountpoint)"
[ -d "$target" ] && [ -n "$mountpoint_real" ] && exec "$mountpoint_real" "$@"
exit 1"#,
    ),
    (
        "umount",
        r#"echo "umount $*" >> "$SANDBOX/calls.log"
target="${*: -1}"
if [ ! -L "$target" ] && [ -d "$target" ] && PATH="${PATH#*:}" mountpoint -q "$target"; then
  exec env PATH="${PATH#*:}" umount "$@"
fi
if [ ! -L "$target" ]; then echo "umount: $target: not mounted." >&2; exit 32; fi
if [ -e "$SANDBOX_ROOT/umount-busy" ]; then echo "umount: $target: target is busy." >&2; exit 32; fi
rm -f "$target""#,
    ),
];

// ---- GitLab backups and restores (the backup lane's stubs) ----

/// S3 as the AWS CLI shows it, one directory per bucket under
/// `$SANDBOX_ROOT/s3/<bucket>/` (shared by every instance, as a bucket
/// is), with each object's server-side encryption beside it under
/// `$SANDBOX_ROOT/s3-sse/`. `aws s3 cp` (AWS CLI v2, `aws s3 cp help`):
/// a local file to `s3://bucket/key`, or an object to a file or a
/// directory (ending in `/`: the key's last part); a missing object fails
/// with HeadObject's 404 and exit 1. `aws s3api head-object --query
/// ContentLength --output text` prints the size; missing: 404, exit 254
/// (the CLI's exit status for a service error, `aws help return-codes`).
const S3: &str = r#"
s3_root="$SANDBOX_ROOT/s3"
s3_path() { local rest="${1#s3://}"; echo "$s3_root/$rest"; }
s3_missing() { echo "An error occurred (404) when calling the HeadObject operation: Key \"$1\" does not exist" >&2; }
s3_main() {
  local service="$1" command="$2" src="" dst="" sse="" bucket="" key="" query="" arg
  shift 2
  while [ "$#" -gt 0 ]; do
    arg="$1"
    case "$arg" in
      --sse) sse="$2"; shift ;;
      --bucket) bucket="$2"; shift ;;
      --key) key="$2"; shift ;;
      --query) query="$2"; shift ;;
      --region | --output) shift ;;
      --*) ;;
      *) if [ -z "$src" ]; then src="$arg"; else dst="$arg"; fi ;;
    esac
    shift
  done
  case "$service $command" in
    "s3 cp")
      case "$src" in
        s3://*)
          local from
          from="$(s3_path "$src")"
          [ -f "$from" ] || { echo "fatal error: $(s3_missing "${src#s3://*/}" 2>&1)" >&2; return 1; }
          case "$dst" in */) dst="$dst${src##*/}" ;; esac
          [ ! -d "$dst" ] || dst="$dst/${src##*/}"
          cp "$from" "$dst"
          ;;
        *)
          local to
          to="$(s3_path "$dst")"
          [ -f "$src" ] || { echo "The user-provided path $src does not exist." >&2; return 255; }
          mkdir -p "${to%/*}"
          cp "$src" "$to"
          local meta="$SANDBOX_ROOT/s3-sse/${dst#s3://}"
          mkdir -p "${meta%/*}"
          printf '%s\n' "$sse" > "$meta"
          ;;
      esac
      ;;
    "s3api head-object")
      local object="$s3_root/$bucket/$key"
      [ -f "$object" ] || { s3_missing "$key"; return 254; }
      [ "$query" = ContentLength ] && wc -c < "$object"
      ;;
    *) echo "sandbox: aws $service $command is not modelled" >&2; return 2 ;;
  esac
}
"#;

/// `gitlab-backup` and `gitlab-ctl stop|start|restart` as far as glbox's
/// backup and restore rely on them. GitLab's data is stood for by the
/// directory `gitlab-data` on the data volume.
///
/// create (lib/backup/manager.rb; doc/administration/backup_restore/
/// backup_gitlab.md): needs GitLab configured and running; writes
/// `<backup_path>/<id>_gitlab_backup.tar` (backup_path defaults to
/// /var/opt/gitlab/backups; the id is `<unix time>_<YYYY_MM_DD>_<version>`,
/// "Backup ID"), a tar of the data and `backup_information.yml` (with the
/// version and what SKIP left out); uploads it to the bucket's root when
/// gitlab.rb sets backup_upload_remote_directory with an AWS connection
/// ("Using Amazon S3"), server-side encrypted as
/// backup_upload_storage_options says; prunes local archives older than
/// backup_keep_time ("Limit backup lifetime for local files"); ends with
/// "Backup <id> is done.". A test makes the upload fail with
/// `$SANDBOX_ROOT/upload-fails`.
///
/// restore (doc/administration/backup_restore/restore_gitlab.md): the
/// archive must be in backup_path; a backup of another version is refused
/// with GitLab's "GitLab version mismatch" (lib/backup/manager.rb); puma
/// and sidekiq must be stopped first (the doc's "Stop the processes that
/// are connected to the database"); without force=yes it asks before
/// replacing the data, and stops unless told "yes". It does not touch
/// /etc/gitlab (the secrets are not in the backup).
const GITLAB_BACKUP: &str = r#"
data="$GLBOX_DATA_MOUNTPOINT"
backups="$data/backups"
services_dir="$SANDBOX/services"

service_state() { cat "$services_dir/$1" 2>/dev/null || echo missing; }

# `gitlab-ctl stop|start|restart [SERVICE]` (omnibus-ctl: runit's `sv down`
# / `sv up` for the service, or every service of this instance; a start
# keeps those a test names in $SANDBOX_ROOT/services-down down).
omnibus_service_control() {
  local action="$1" sv state
  # Every service (no name given) of a box with none is nothing to do.
  if [ ! -d "$services_dir" ]; then
    [ -n "${2:-}" ] || return 0
    echo "GitLab is not configured on this box" >&2
    return 1
  fi
  for sv in "$services_dir"/*; do
    [ -e "$sv" ] || continue
    [ -z "${2:-}" ] || [ "${sv##*/}" = "$2" ] || continue
    state=run
    [ "$action" != stop ] || state=down
    # A service a test keeps down does not start.
    if grep -qx "${sv##*/}" "$SANDBOX_ROOT/services-down" 2>/dev/null; then state=down; fi
    echo "$state" > "$sv"
    echo "ok: $state: ${sv##*/}"
  done
}

gitlab_rb_value() {
  sed -n "s/^gitlab_rails\['$1'\] = '\(.*\)'$/\1/p" "$GLBOX_ETC_GITLAB/gitlab.rb" 2>/dev/null
}

backup_create() {
  local version id archive work bucket keep skip="" arg
  for arg in "$@"; do case "$arg" in SKIP=*) skip="${arg#SKIP=}" ;; esac; done
  version="$(cat "$SANDBOX/installed" 2>/dev/null)"
  if [ -z "$version" ] || [ "$(service_state puma)" != run ]; then
    echo "PG::ConnectionBad: connection to server on socket \"/var/opt/gitlab/postgresql/.s.PGSQL.5432\" failed" >&2
    return 1
  fi
  id="$(date +%s)_$(date +%Y_%m_%d)_$version"
  archive="$backups/${id}_gitlab_backup.tar"
  work="$(mktemp -d)"
  mkdir -p "$work/data" "$backups"
  [ ! -d "$data/gitlab-data" ] || cp -a "$data/gitlab-data/." "$work/data/"
  printf ':gitlab_version: %s\n:skipped: %s\n' "$version" "$skip" > "$work/backup_information.yml"
  tar -C "$work" -cf "$archive" backup_information.yml data
  rm -rf "$work"
  echo "$(date -u '+%F %T') UTC -- Creating backup archive: ${id}_gitlab_backup.tar ... done"
  bucket="$(gitlab_rb_value backup_upload_remote_directory)"
  if [ -n "$bucket" ] && grep -q "'provider' => 'AWS'" "$GLBOX_ETC_GITLAB/gitlab.rb"; then
    echo "$(date -u '+%F %T') UTC -- Uploading backup archive to remote storage $bucket ... "
    if [ -e "$SANDBOX_ROOT/upload-fails" ]; then
      echo "Excon::Error::Forbidden: Expected(200) <=> Actual(403 Forbidden)" >&2
      return 1
    fi
    mkdir -p "$SANDBOX_ROOT/s3/$bucket" "$SANDBOX_ROOT/s3-sse/$bucket"
    cp "$archive" "$SANDBOX_ROOT/s3/$bucket/${id}_gitlab_backup.tar"
    sed -n "s/.*'server_side_encryption' => '\([^']*\)'.*/\1/p" "$GLBOX_ETC_GITLAB/gitlab.rb" \
      > "$SANDBOX_ROOT/s3-sse/$bucket/${id}_gitlab_backup.tar"
    echo "upload s3://$bucket/${id}_gitlab_backup.tar" >> "$SANDBOX/calls.log"
  fi
  keep="$(sed -n "s/^gitlab_rails\['backup_keep_time'\] = \([0-9]*\)$/\1/p" "$GLBOX_ETC_GITLAB/gitlab.rb")"
  if [ -n "$keep" ]; then
    find "$backups" -maxdepth 1 -name '*_gitlab_backup.tar' ! -newermt "@$(( $(date +%s) - keep ))" -delete
  fi
  echo "$(date -u '+%F %T') UTC -- Backup $id is done."
}

backup_restore() {
  local name="" force="" arg archive work version
  for arg in "$@"; do
    case "$arg" in BACKUP=*) name="${arg#BACKUP=}" ;; force=*) force="${arg#force=}" ;; esac
  done
  archive="$backups/${name}_gitlab_backup.tar"
  if [ ! -f "$archive" ]; then
    echo "The backup file ${name}_gitlab_backup.tar does not exist!" >&2
    return 1
  fi
  work="$(mktemp -d)"
  tar -C "$work" -xf "$archive"
  version="$(sed -n 's/^:gitlab_version: //p' "$work/backup_information.yml")"
  if [ "$version" != "$(cat "$SANDBOX/installed" 2>/dev/null)" ]; then
    echo "GitLab version mismatch:" >&2
    echo "  Your current GitLab version ($(cat "$SANDBOX/installed" 2>/dev/null)) differs from the GitLab version in the backup!" >&2
    echo "  Please switch to the following version and try again:" >&2
    echo "  version: $version" >&2
    rm -rf "$work"
    return 1
  fi
  if [ "$(service_state puma)" = run ] || [ "$(service_state sidekiq)" = run ]; then
    echo "sandbox: puma and sidekiq must be stopped before a restore (restore_gitlab.md)" >&2
    rm -rf "$work"
    return 1
  fi
  if [ "$force" != yes ]; then
    echo "This task will now rebuild the authorized_keys file. Do you want to continue (yes/no)?"
    local answer=""
    read -r answer || true
    if [ "$answer" != yes ]; then echo "Quitting..."; rm -rf "$work"; return 1; fi
  fi
  rm -rf "$data/gitlab-data"
  mkdir -p "$data/gitlab-data"
  cp -a "$work/data/." "$data/gitlab-data/"
  rm -rf "$work"
  echo "restored $name" >> "$SANDBOX/calls.log"
  echo "Restore task is done."
}
"#;

/// Crashes the script that called a stub right after the stub did its
/// work, when `$SANDBOX_ROOT/crash-after` names the call (its first words,
/// such as `gitlab-backup restore`): the parent shell is killed as a
/// power cut would stop it, once (the switch is removed).
const CRASH_AFTER: &str = r#"
crash_after() {
  local wanted
  wanted="$(cat "$SANDBOX_ROOT/crash-after" 2>/dev/null)" || return 0
  case "$*" in
    "$wanted"*) rm -f "$SANDBOX_ROOT/crash-after"; echo "crash after: $*" >> "$SANDBOX/calls.log"; kill -9 "$PPID" ;;
  esac
}
"#;

/// `gitlab-backup`, `systemctl` and `chown`, recording their calls like
/// the other stubs (queries are not recorded).
pub const BACKUP_STUBS: &[(&str, &str)] = &[
    (
        "gitlab-backup",
        r#"echo "gitlab-backup $*" >> "$SANDBOX/calls.log"
. "$SANDBOX_ROOT/lib/backup.sh"
. "$SANDBOX_ROOT/lib/crash-after.sh"
command="$1"; shift
case "$command" in
  create) backup_create "$@" ;;
  restore) backup_restore "$@" ;;
  *) echo "Usage: gitlab-backup create|restore" >&2; exit 1 ;;
esac || exit 1
crash_after gitlab-backup "$command""#,
    ),
    (
        // systemctl(1), as far as the backup timer goes: units under
        // $GLBOX_SYSTEMD_DIR, enabled ones listed in $SANDBOX/systemd-enabled.
        "systemctl",
        r#"enabled="$SANDBOX/systemd-enabled"
mkdir -p "$enabled"
quiet=""; args=()
for arg in "$@"; do case "$arg" in --quiet | -q) quiet=1 ;; *) args+=("$arg") ;; esac; done
set -- "${args[@]}"
case "$1" in
  is-enabled)
    if [ -e "$enabled/$2" ]; then [ -n "$quiet" ] || echo enabled; exit 0; fi
    [ -n "$quiet" ] || echo disabled; exit 1 ;;
esac
echo "systemctl $*" >> "$SANDBOX/calls.log"
case "$1" in
  enable | disable)
    now=""; unit=""
    for arg in "${@:2}"; do case "$arg" in --now) now=1 ;; *) unit="$arg" ;; esac; done
    if [ "$1" = enable ]; then
      [ -e "$GLBOX_SYSTEMD_DIR/$unit" ] || { echo "Failed to enable unit: Unit file $unit does not exist." >&2; exit 1; }
      touch "$enabled/$unit"
    else
      rm -f "$enabled/$unit"
    fi ;;
  restart | start)
    [ -e "$GLBOX_SYSTEMD_DIR/$2" ] || { echo "Failed to $1 $2: Unit $2 not found." >&2; exit 5; } ;;
esac"#,
    ),
    ("chown", r#"echo "chown $*" >> "$SANDBOX/calls.log""#),
];

/// The variables that point glbox's scripts at one instance of the
/// sandbox: `instance` is its state directory, `root` the sandbox's and
/// `data` where its data volume is mounted (shell expressions allowed).
fn instance_env(instance: &str, root: &str, data: &str) -> Vec<(String, String)> {
    [
        ("PATH", format!("{root}/bin:/usr/bin:/bin:/usr/sbin:/sbin")),
        ("SANDBOX", instance.to_string()),
        ("SANDBOX_ROOT", root.to_string()),
        ("GLBOX_ETC_GITLAB", format!("{instance}/etc-gitlab")),
        ("GLBOX_LOG_DIR", format!("{instance}/log")),
        (
            "GLBOX_PREPARE_DATA",
            format!("{root}/bin/glbox-prepare-data"),
        ),
        ("GLBOX_APT_SOURCES", format!("{instance}/apt")),
        ("GLBOX_APT_CONF_DIR", format!("{instance}/apt-conf")),
        ("GLBOX_YUM_REPOS", format!("{instance}/yum")),
        (
            "GLBOX_PREFETCH_MARK",
            format!("{instance}/var-lib-glbox/prefetched"),
        ),
        ("GLBOX_DATA_MOUNTPOINT", data.to_string()),
        ("GLBOX_LOCK_DIR", format!("{instance}/lock")),
        ("GLBOX_RUN_DIR", format!("{instance}/run")),
        ("GLBOX_SBIN_DIR", format!("{instance}/sbin")),
        ("GLBOX_SYSTEMD_DIR", format!("{instance}/systemd")),
        // No cloud-init run on this machine: the wait is skipped.
        (
            "GLBOX_CLOUD_INIT_RUN_DIR",
            format!("{instance}/no-cloud-init"),
        ),
        // Services come up at once here.
        ("GLBOX_SERVICES_WAIT", "0".to_string()),
        // Background migrations are asked about again at once.
        ("GLBOX_MIGRATIONS_POLL", "0".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .to_vec()
}

/// `bin/sandbox-instance INSTANCE_ID COMMAND`: what the SSM agent of that
/// instance would do with COMMAND (`sh -c`, as root, in its own state).
fn instance_runner() -> String {
    let mut out = String::from(
        "id=\"${1:?usage: sandbox-instance INSTANCE_ID COMMAND}\"\n\
         root=\"$(cd \"$(dirname \"$0\")/..\" && pwd)\"\n\
         export SANDBOX_VOLUMES=\"$root/volumes\"\n",
    );
    for (key, value) in instance_env("$root/instances/$id", "$root", "$root/instances/$id/mnt") {
        out.push_str(&format!("export {key}=\"{value}\"\n"));
    }
    for sub in INSTANCE_DIRS {
        out.push_str(&format!("mkdir -p \"$SANDBOX/{sub}\"\n"));
    }
    out.push_str("cd \"$SANDBOX\"\nexec sh -c \"$2\"");
    out
}

pub struct Sandbox {
    dir: tempfile::TempDir,
}

fn write_executable(path: &std::path::Path, body: &str) {
    std::fs::write(path, format!("#!/bin/bash\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        for sub in ["bin", "lib", "data", "volumes", "instances"]
            .iter()
            .chain(INSTANCE_DIRS)
        {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(
            dir.path().join("smtp-password"),
            format!("{SMTP_PASSWORD}\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("lib/omnibus.sh"), OMNIBUS).unwrap();
        std::fs::write(dir.path().join("lib/apt-lock.sh"), APT_LOCK).unwrap();
        std::fs::write(dir.path().join("lib/package-cache.sh"), PACKAGE_CACHE).unwrap();
        std::fs::write(dir.path().join("lib/upgrade.sh"), UPGRADE).unwrap();
        std::fs::write(dir.path().join("lib/s3.sh"), S3).unwrap();
        std::fs::write(dir.path().join("lib/backup.sh"), GITLAB_BACKUP).unwrap();
        std::fs::write(dir.path().join("lib/crash-after.sh"), CRASH_AFTER).unwrap();
        for (name, body) in STUBS.iter().chain(BACKUP_STUBS) {
            write_executable(&bin.join(name), body);
        }
        write_executable(&bin.join("sandbox-instance"), &instance_runner());
        Sandbox { dir }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The environment that points the bootstrap at the sandbox.
    pub fn env(&self) -> Vec<(String, String)> {
        let root = self.dir.path().display().to_string();
        instance_env(&root, &root, &format!("{root}/data"))
    }

    /// The sandbox's environment with its `aws` backed by the emulator at
    /// `endpoint`: parameters are read for real, decrypted.
    pub fn env_backed_by(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env = self.env();
        env.push(("SANDBOX_AWS_ENDPOINT".into(), endpoint.to_string()));
        env.push((
            "SANDBOX_PYTHON".into(),
            std::env::var("TEST_MOTO_PYTHON").expect("scripts/test sets TEST_MOTO_PYTHON"),
        ));
        env
    }

    /// A new instance on the same data volume (a replacement, or `down`
    /// then `up`): its root disk is new, so /etc/gitlab, the package, the
    /// services, the repository and apt's settings are gone; `data` stays.
    pub fn new_instance(&self) {
        for sub in INSTANCE_DIRS {
            let path = self.path(sub);
            std::fs::remove_dir_all(&path).unwrap();
            std::fs::create_dir_all(&path).unwrap();
        }
        for file in ["installed", "calls.log"] {
            let _ = std::fs::remove_file(self.path(file));
        }
        let _ = std::fs::remove_dir_all(self.path("services"));
        let _ = std::fs::remove_dir_all(self.path("systemd-enabled"));
    }

    /// Forgets the calls recorded so far.
    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.path("calls.log"));
    }

    pub fn run(&self, script: &str) -> Output {
        self.run_with(script, &[])
    }

    /// Runs with `extra` variables on top of the sandbox's.
    pub fn run_with(&self, script: &str, extra: &[(String, String)]) -> Output {
        let script_path = self.path("bootstrap.sh");
        std::fs::write(&script_path, script).unwrap();
        self.clear_calls();
        Command::new("bash")
            .arg(&script_path)
            .env_clear()
            .envs(self.env())
            .envs(extra.iter().cloned())
            .output()
            .unwrap()
    }

    pub fn calls(&self) -> Vec<String> {
        calls_in(&self.path("calls.log"))
    }

    pub fn count(&self, prefix: &str) -> usize {
        count_in(&self.calls(), prefix)
    }

    /// Reconfigures run since the calls were last cleared, whoever ran them
    /// (glbox, or the package's own script).
    pub fn reconfigures(&self) -> usize {
        self.count("reconfigure-run ")
    }

    /// Whether this instance has GitLab's services, all running.
    pub fn services_running(&self) -> bool {
        services_running_in(&self.path("services"))
    }

    /// One instance of a sandbox run by the emulator.
    pub fn instance(&self, instance_id: &str) -> SandboxInstance {
        SandboxInstance {
            dir: self.path(&format!("instances/{instance_id}")),
        }
    }
}

/// One instance of a sandbox the emulator runs SSM commands in.
pub struct SandboxInstance {
    pub dir: PathBuf,
}

impl SandboxInstance {
    pub fn calls(&self) -> Vec<String> {
        calls_in(&self.dir.join("calls.log"))
    }

    pub fn count(&self, prefix: &str) -> usize {
        count_in(&self.calls(), prefix)
    }

    pub fn reconfigures(&self) -> usize {
        self.count("reconfigure-run ")
    }

    pub fn services_running(&self) -> bool {
        services_running_in(&self.dir.join("services"))
    }
}

fn calls_in(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn count_in(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

fn services_running_in(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let states: Vec<String> = entries
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    !states.is_empty() && states.iter().all(|s| s.trim() == "run")
}

/// The bootstrap glbox would send for `settings`, with a fixed data volume,
/// the root password's parameter, no SMTP user and no backup bucket.
pub fn bootstrap_script(settings: &glbox::config::Settings, external_url: &str) -> String {
    glbox::bootstrap::render(
        settings,
        &glbox::bootstrap::Target {
            data_volume_id: "vol-0123456789abcdef0",
            external_url,
            smtp_username: None,
            root_password_parameter: "/glbox/trial/root-password",
            backup_bucket: None,
        },
    )
}

/// A script's stdout and stderr, as one text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the script succeeded; returns its output.
pub fn succeeded(out: &Output) -> String {
    let text = output_text(out);
    assert!(out.status.success(), "script failed:\n{text}");
    text
}
