#!/bin/bash
# glbox-backup: one GitLab backup to the deployment's S3 bucket, with the
# configuration GitLab's backup does not hold. The bootstrap installs it as
# /usr/local/sbin/glbox-backup (with the deployment's values in front of
# this text); glbox-backup.timer runs it nightly and `glbox backup` on
# request. Runs as root.
#
# GitLab uploads the archive itself, to the bucket's root, with the
# instance role (gitlab.rb's backup_upload_connection, use_iam_profile);
# this script then puts gitlab-secrets.json and gitlab.rb under
# config/<backup id>/, encrypted, since GitLab's backup holds neither
# (doc/administration/backup_restore/backup_gitlab.md, "Storing
# configuration files"). Everything it prints also goes to
# /var/log/glbox/backup.log.
#
# --fresh-within SECONDS: when a backup finished that recently (the one a
# `glbox backup` cut short left behind), report it instead of making
# another.
set -euo pipefail

: "${GLBOX_REGION:?}" "${GLBOX_BACKUP_BUCKET:?}"

# Paths, overridable only so the tests can run this in a sandbox.
etc_gitlab="${GLBOX_ETC_GITLAB:-/etc/gitlab}"
log_dir="${GLBOX_LOG_DIR:-/var/log/glbox}"
lock_dir="${GLBOX_LOCK_DIR:-/run/glbox}"
data_mountpoint="${GLBOX_DATA_MOUNTPOINT:-/var/opt/gitlab}"
# The last backup made here ("<id> <archive bytes>"), on the data volume.
last_backup="$data_mountpoint/glbox/last-backup"
# How long a second run waits for the one already running (6 h).
lock_wait="${GLBOX_BACKUP_LOCK_WAIT:-21600}"

fresh_within=0
case "${1:-}" in
  --fresh-within) fresh_within="${2:?--fresh-within needs seconds}" ;;
  '') ;;
  *)
    echo "usage: glbox-backup [--fresh-within SECONDS]" >&2
    exit 2
    ;;
esac
case "$fresh_within" in
  '' | *[!0-9]*) echo "--fresh-within: not a number of seconds: $fresh_within" >&2 && exit 2 ;;
esac

mkdir -p "$log_dir"
chmod 0750 "$log_dir"
exec > >(tee --output-error=warn-nopipe -a "$log_dir/backup.log") 2>&1

phase() { printf 'glbox-phase: %s\n' "$*"; }
fail() {
  printf 'glbox-error: %s\n' "$*"
  exit "${2:-1}"
}
result() { printf 'glbox-backup: %s %s\n' "$1" "$2"; }

printf '%s glbox-backup starting\n' "$(date -u +%FT%TZ)"

# One backup at a time: the timer's and glbox's never overlap, and a
# restore (which holds the same lock) is never backed up half done.
mkdir -p "$lock_dir"
chmod 0700 "$lock_dir"
exec 9> "$lock_dir/glbox-backup.lock"
if ! flock -n 9; then
  phase "waiting for the backup (or restore) already running on this box"
  flock -w "$lock_wait" 9 || fail "another backup or restore has held the lock for ${lock_wait}s; see $log_dir/backup.log"
fi

if [ "$fresh_within" -gt 0 ] && [ -s "$last_backup" ]; then
  age=$(($(date +%s) - $(stat -c %Y "$last_backup")))
  if [ "$age" -le "$fresh_within" ]; then
    read -r id size < "$last_backup"
    echo "backup $id finished ${age}s ago: reporting it instead of making another"
    result "$id" "$size"
    exit 0
  fi
fi

phase "gitlab-backup create"
run_log="$(mktemp)"
trap 'rm -f "$run_log"' EXIT
# STRATEGY=copy copies the data before archiving it, so files GitLab
# changes meanwhile do not fail tar ("file changed as we read it"). SKIP:
# job artifacts and container images are build output, often most of the
# data, and the EBS snapshots of the data volume hold them; leaving them
# out keeps the nightly archive, its S3 cost and a restore small
# (backup_gitlab.md, "Backup strategy option" and "Excluding specific
# data from the backup").
if ! gitlab-backup create STRATEGY=copy SKIP=artifacts,registry 2>&1 | tee "$run_log"; then
  fail "gitlab-backup create failed: $(grep -v '^ *$' "$run_log" | tail -n 1)"
fi
# GitLab's last word (lib/backup/manager.rb): "Backup <id> is done.",
# after a timestamp and perhaps in color.
id="$(sed 's/\x1b\[[0-9;]*m//g' "$run_log" | sed -n 's/.*Backup \([0-9][0-9A-Za-z_.-]*\) is done\..*/\1/p' | tail -n 1)"
[ -n "$id" ] || fail "gitlab-backup create did not say which backup it made; see $log_dir/backup.log"
archive="${id}_gitlab_backup.tar"

phase "configuration to s3://$GLBOX_BACKUP_BUCKET/config/$id/"
for file in gitlab-secrets.json gitlab.rb; do
  aws s3 cp "$etc_gitlab/$file" "s3://$GLBOX_BACKUP_BUCKET/config/$id/$file" \
    --region "$GLBOX_REGION" --sse AES256 --only-show-errors ||
    fail "could not put $file in s3://$GLBOX_BACKUP_BUCKET/config/$id/ (does the instance role allow it?)"
done

phase "checking the archive in S3"
size="$(aws s3api head-object --region "$GLBOX_REGION" --bucket "$GLBOX_BACKUP_BUCKET" \
  --key "$archive" --query ContentLength --output text)" ||
  fail "$archive is not in s3://$GLBOX_BACKUP_BUCKET: GitLab's upload failed; see $log_dir/backup.log"

mkdir -p "${last_backup%/*}"
printf '%s %s\n' "$id" "$size" > "$last_backup"
printf '%s glbox-backup done\n' "$(date -u +%FT%TZ)"
result "$id" "$size"
