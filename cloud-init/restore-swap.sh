#!/bin/bash
# glbox restore --snapshot: the box's part of swapping the data volume.
# Sent by glbox (through SSM Run Command or SSH) and run as root; glbox puts
# GLBOX_RESTORE_STEP (and, to start, GLBOX_DATA_VOLUME) in front of this.
#
#   stop:  GitLab's services stopped and the data volume unmounted, so the
#          volume can be detached with its file system clean (EC2 user guide,
#          "Detach an Amazon EBS volume from an instance": unmount first, or
#          the volume can get stuck in the busy state). The bootstrap that
#          follows the swap is told to reconfigure (migrations for older
#          data).
#   start: the new data volume mounted (by glbox-prepare-data, which never
#          reformats a volume holding a file system) and GitLab started on it.
#
# Safe to re-run: a stopped GitLab stays stopped, an unmounted volume is not
# unmounted again, a mounted one is not mounted again.
set -euo pipefail

: "${GLBOX_RESTORE_STEP:?}"
# Paths, overridable only so the tests can run this in a sandbox.
etc_gitlab="${GLBOX_ETC_GITLAB:-/etc/gitlab}"
data_mountpoint="${GLBOX_DATA_MOUNTPOINT:-/var/opt/gitlab}"
prepare_data="${GLBOX_PREPARE_DATA:-/usr/local/sbin/glbox-prepare-data}"
# The bootstrap's marker: it reconfigures while this exists.
pending="$etc_gitlab/.glbox-reconfigure-pending"

fail() {
  printf 'glbox-error: %s\n' "$*"
  exit 1
}

stop_gitlab() {
  if command -v gitlab-ctl > /dev/null; then
    gitlab-ctl stop || fail "gitlab-ctl stop failed; GitLab is still on the old data volume, which is unchanged"
  fi
  mkdir -p "$etc_gitlab"
  touch "$pending"
  sync
  if mountpoint -q "$data_mountpoint"; then
    umount "$data_mountpoint" ||
      fail "cannot unmount $data_mountpoint (something still uses it: fuser -vm $data_mountpoint); the volume was not detached"
  fi
  printf 'glbox-restore: stopped\n'
}

start_gitlab() {
  : "${GLBOX_DATA_VOLUME:?}"
  case "$GLBOX_DATA_VOLUME" in
    vol-*[!0-9a-f]* | vol-) fail "unexpected data volume id $GLBOX_DATA_VOLUME" ;;
    vol-*) ;;
    *) fail "unexpected data volume id $GLBOX_DATA_VOLUME" ;;
  esac
  "$prepare_data" "$GLBOX_DATA_VOLUME" "$data_mountpoint"
  if command -v gitlab-ctl > /dev/null; then
    gitlab-ctl start || fail "gitlab-ctl start failed on the restored data"
  fi
  printf 'glbox-restore: started\n'
}

case "$GLBOX_RESTORE_STEP" in
  stop) stop_gitlab ;;
  start) start_gitlab ;;
  *) fail "unknown restore step $GLBOX_RESTORE_STEP" ;;
esac
