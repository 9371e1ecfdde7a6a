#!/bin/bash
# glbox restore --backup: GitLab's documented restore of one backup from
# the deployment's S3 bucket (doc/administration/backup_restore/
# restore_gitlab.md, "Restore for Linux package installations"). Sent by
# glbox with the deployment's values in front of this text; runs as root.
#
# The backup's GitLab version must be the installed one (GitLab restores
# only into the same version and edition): checked first, before anything
# is downloaded or stopped. Then: the archive and the configuration kept
# beside it downloaded; puma and sidekiq stopped; `gitlab-backup restore`;
# gitlab-secrets.json put back (gitlab.rb only beside it, as
# gitlab.rb.from-backup-<id>: glbox writes gitlab.rb); reconfigure;
# restart; `gitlab-rake gitlab:check SANITIZE=true`.
#
# Safe to re-run: each step done for this backup is written to a state
# file on the data volume, so after a crash the same command goes on from
# the step it reached; the file goes once the restore is complete.
set -euo pipefail

: "${GLBOX_REGION:?}" "${GLBOX_BACKUP_BUCKET:?}" "${GLBOX_RESTORE_BACKUP:?}" "${GLBOX_OS:?}" "${GLBOX_EDITION:?}"
backup="$GLBOX_RESTORE_BACKUP"
package="gitlab-$GLBOX_EDITION"

# Paths, overridable only so the tests can run this in a sandbox.
etc_gitlab="${GLBOX_ETC_GITLAB:-/etc/gitlab}"
log_dir="${GLBOX_LOG_DIR:-/var/log/glbox}"
lock_dir="${GLBOX_LOCK_DIR:-/run/glbox}"
data_mountpoint="${GLBOX_DATA_MOUNTPOINT:-/var/opt/gitlab}"
# gitlab_rails['backup_path'], GitLab's default (glbox does not change it).
backup_dir="$data_mountpoint/backups"
state_dir="$data_mountpoint/glbox"
restore_dir="$state_dir/restore/$backup"
steps="$restore_dir/steps-done"

mkdir -p "$log_dir"
chmod 0750 "$log_dir"
exec > >(tee --output-error=warn-nopipe -a "$log_dir/restore.log") 2>&1

phase() { printf 'glbox-phase: %s\n' "$*"; }
fail() {
  printf 'glbox-error: %s\n' "$*"
  exit "${2:-1}"
}
done_already() { grep -qx "$1" "$steps" 2> /dev/null; }
mark_done() { printf '%s\n' "$1" >> "$steps"; }

# The backup id is <unix time>_<YYYY>_<MM>_<DD>_<GitLab version>
# (backup_gitlab.md, "Backup ID"); older versions end it with -ce or -ee.
case "$backup" in
  *[!0-9A-Za-z_.-]* | *..*) fail "not a backup id: $backup" 2 ;;
esac
backup_version="$(printf '%s' "$backup" | sed -n 's/^[0-9]*_[0-9]\{4\}_[0-9]\{2\}_[0-9]\{2\}_\([0-9]*\.[0-9]*\.[0-9]*\)\(-[ce]e\)\{0,1\}$/\1/p')"
backup_edition="$(printf '%s' "$backup" | sed -n 's/.*-\([ce]e\)$/\1/p')"
[ -n "$backup_version" ] || fail "not a backup id: $backup (expected <time>_<YYYY>_<MM>_<DD>_<version>)" 2

# The installed version (major.minor.patch), or nothing; as the bootstrap
# reads it.
installed_version() {
  case "$GLBOX_OS" in
    ubuntu-24.04)
      { dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$package" 2> /dev/null || true; } |
        sed -n 's/^installed \([0-9.]*\)-.*/\1/p'
      ;;
    *) rpm -q --qf '%{VERSION}\n' "$package" 2> /dev/null | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' || true ;;
  esac
}

# One restore at a time, and never beside a backup (the same lock as
# glbox-backup).
mkdir -p "$lock_dir"
chmod 0700 "$lock_dir"
exec 9> "$lock_dir/glbox-backup.lock"
if ! flock -n 9; then
  phase "waiting for the backup running on this box"
  flock -w 21600 9 || fail "a backup has held the lock for 6 hours; see $log_dir/backup.log"
fi

phase "version"
installed="$(installed_version)"
[ -n "$installed" ] || fail "$package is not installed on this box: run glbox up first" 3
if [ "$installed" != "$backup_version" ]; then
  fail "backup $backup was made by GitLab $backup_version, and this box runs $package $installed: GitLab restores a backup only into the version that made it. Fix: set gitlab.version = \"$backup_version\" in glbox.toml and run glbox up, then run this restore again" 3
fi
if [ -n "$backup_edition" ] && [ "gitlab-$backup_edition" != "$package" ]; then
  fail "backup $backup was made by gitlab-$backup_edition, and this box runs $package: set gitlab.edition = \"$backup_edition\" and run glbox up first" 3
fi

mkdir -p "$restore_dir"
chmod 0700 "$state_dir" "$restore_dir"

if ! done_already download; then
  phase "download from s3://$GLBOX_BACKUP_BUCKET"
  mkdir -p "$backup_dir"
  aws s3 cp "s3://$GLBOX_BACKUP_BUCKET/${backup}_gitlab_backup.tar" "$backup_dir/" \
    --region "$GLBOX_REGION" --only-show-errors ||
    fail "backup $backup is not in s3://$GLBOX_BACKUP_BUCKET: glbox backups lists the ones there" 3
  # The archive must be the git user's (restore_gitlab.md).
  chown git:git "$backup_dir/${backup}_gitlab_backup.tar"
  for file in gitlab-secrets.json gitlab.rb; do
    (umask 077 && aws s3 cp "s3://$GLBOX_BACKUP_BUCKET/config/$backup/$file" "$restore_dir/$file" \
      --region "$GLBOX_REGION" --only-show-errors) ||
      fail "s3://$GLBOX_BACKUP_BUCKET/config/$backup/$file is missing: without the backup's gitlab-secrets.json its encrypted data (CI variables, 2FA) cannot be read; restore from a snapshot instead (glbox restore --snapshot)" 3
  done
  mark_done download
fi

if ! done_already restore; then
  phase "stopping puma and sidekiq"
  gitlab-ctl stop puma
  gitlab-ctl stop sidekiq
  gitlab-ctl status || true
  phase "gitlab-backup restore"
  gitlab-backup restore BACKUP="$backup" force=yes
  mark_done restore
fi

if ! done_already secrets; then
  phase "gitlab-secrets.json from the backup"
  install -m 0600 "$restore_dir/gitlab-secrets.json" "$etc_gitlab/gitlab-secrets.json"
  # The bootstrap gives a new instance the copy on the data volume.
  install -m 0600 "$restore_dir/gitlab-secrets.json" "$state_dir/gitlab-secrets.json"
  install -m 0600 "$restore_dir/gitlab.rb" "$etc_gitlab/gitlab.rb.from-backup-$backup"
  echo "the backup's gitlab.rb is at $etc_gitlab/gitlab.rb.from-backup-$backup (glbox writes gitlab.rb)"
  mark_done secrets
fi

if ! done_already reconfigure; then
  phase "reconfigure"
  gitlab-ctl reconfigure
  mark_done reconfigure
fi

if ! done_already restart; then
  phase "restart"
  gitlab-ctl restart
  mark_done restart
fi

phase "gitlab:check"
check_log="$(mktemp)"
trap 'rm -f "$check_log"' EXIT
gitlab-rake gitlab:check SANITIZE=true 2>&1 | tee "$check_log" ||
  fail "gitlab-rake gitlab:check SANITIZE=true did not run after the restore (above); correct the cause, then run this restore again"
# The data is back whatever the check says: what it finds wrong (its
# "... no" and "... Failure" lines, as glbox verify --deep reads them) is
# reported, for the operator to correct.
grep -E '\.\.\. (no|Failure|FAIL|failed)$' "$check_log" | sed 's/^ */glbox-warning: gitlab:check: /' || true

rm -rf "$restore_dir"
printf 'glbox-restored: %s\n' "$backup"
