#!/bin/bash
# glbox: prepare the EBS data volume and mount it at GitLab's data directory.
#
# Usage: glbox-prepare-data VOLUME_ID MOUNTPOINT [MIN_MIB]
#
# Safe to run any number of times: it formats the device only when it holds
# no file system at all, adds one fstab line (by UUID, with nofail) and
# mounts it if it is not mounted yet. It never reformats. It grows the file
# system to the device (after a ModifyVolume), waiting until the device
# shows at least MIN_MIB (EBS: "Extend the file system after resizing a
# volume" in the EC2 user guide; the new size is visible once the
# modification is "optimizing").
#
# Environment (for tests; the defaults are the real paths):
#   GLBOX_DISK_BY_ID   where udev lists disks by id   (/dev/disk/by-id)
#   GLBOX_XEN_DEVICES  Xen device names to fall back to ("/dev/sdf /dev/xvdf")
#   GLBOX_FSTAB        the fstab to maintain           (/etc/fstab)
#   GLBOX_DEVICE_WAIT  seconds to wait for the device  (300)
#   GLBOX_LOCK_DIR     where the run lock lives         (/run/glbox)
#   GLBOX_RESIZE_WAIT  seconds to wait for MIN_MIB       (600)
set -euo pipefail

volume_id="${1:?usage: glbox-prepare-data VOLUME_ID MOUNTPOINT}"
mountpoint_dir="${2:?usage: glbox-prepare-data VOLUME_ID MOUNTPOINT}"
min_mib="${3:-0}"
by_id="${GLBOX_DISK_BY_ID:-/dev/disk/by-id}"
xen_devices="${GLBOX_XEN_DEVICES:-/dev/sdf /dev/xvdf}"
fstab="${GLBOX_FSTAB:-/etc/fstab}"
wait_seconds="${GLBOX_DEVICE_WAIT:-300}"
# Root's own (/run/lock is world-writable: anyone could hold the lock).
lock_dir="${GLBOX_LOCK_DIR:-/run/glbox}"
resize_wait="${GLBOX_RESIZE_WAIT:-600}"

log() { printf 'glbox-prepare-data: %s\n' "$*" >&2; }

# cloud-init and the bootstrap both run this: never two at once (two
# probes could both find a blank disk and both format it).
mkdir -p "$lock_dir"
chmod 0700 "$lock_dir"
exec 9> "$lock_dir/glbox-prepare-data.lock"
flock 9

# Nitro instances show EBS volumes as NVMe devices whose serial is the
# volume id without its dash; Xen instances keep the requested name.
find_device() {
  local nvme="$by_id/nvme-Amazon_Elastic_Block_Store_${volume_id//-/}"
  if [ -e "$nvme" ]; then
    readlink -f "$nvme"
    return 0
  fi
  local candidate
  for candidate in $xen_devices; do
    if [ -b "$candidate" ]; then
      readlink -f "$candidate"
      return 0
    fi
  done
  return 1
}

device=""
waited=0
until device="$(find_device)"; do
  if [ "$waited" -ge "$wait_seconds" ]; then
    log "volume $volume_id did not appear within ${wait_seconds}s (is it attached?)"
    exit 1
  fi
  sleep 2
  waited=$((waited + 2))
done
log "volume $volume_id is $device"

# Format only when the probe finds nothing at all (blkid's exit status 2).
# -p reads the device itself (blkid's cache may remember an earlier disk).
# Any other failure, or a partition table, stops here: never risk data.
probe_status=0
probe="$(blkid -p -o export "$device")" || probe_status=$?
case "$probe_status" in
  0)
    fs_type="$(printf '%s\n' "$probe" | sed -n 's/^TYPE=//p')"
    if [ -z "$fs_type" ]; then
      log "$device holds no file system but something else (a partition table?): not touching it"
      exit 1
    fi
    log "$device already holds $fs_type: keeping it"
    ;;
  2)
    log "no file system on $device: creating ext4"
    mkfs.ext4 -q -L glbox-data "$device"
    ;;
  *)
    log "cannot probe $device (blkid exit status $probe_status): not touching it"
    exit 1
    ;;
esac

uuid="$(blkid -p -o value -s UUID "$device")"
fs_type="$(blkid -p -o value -s TYPE "$device")"
wanted="UUID=$uuid $mountpoint_dir $fs_type defaults,nofail 0 2"
touch "$fstab"
if ! grep -qxF "$wanted" "$fstab"; then
  # Replace any other line for this mount point, keep everything else.
  # Written beside it and renamed, so fstab is never half-written.
  awk -v mp="$mountpoint_dir" '$2 != mp' "$fstab" > "$fstab.glbox-new"
  printf '%s\n' "$wanted" >> "$fstab.glbox-new"
  chmod 0644 "$fstab.glbox-new"
  mv -f "$fstab.glbox-new" "$fstab"
  log "fstab: $wanted"
fi

# The file system's size in bytes (ext4: block count times block size).
fs_bytes() {
  dumpe2fs -h "$device" 2> /dev/null |
    awk -F: '/^Block count/ { count = $2 } /^Block size/ { size = $2 } END { printf "%d\n", count * size }'
}

# Whether the device is bigger than its ext4 file system (by 1 MiB or
# more: a device that is not a whole number of blocks keeps a remainder).
ext4_can_grow() {
  [ "$fs_type" = ext4 ] && [ $(($(blockdev --getsize64 "$device") - $(fs_bytes))) -ge 1048576 ]
}

waited=0
while [ "$(blockdev --getsize64 "$device")" -lt $((min_mib * 1024 * 1024)) ]; do
  if [ "$waited" -ge "$resize_wait" ]; then
    log "$device shows $(($(blockdev --getsize64 "$device") / 1048576)) MiB, not the ${min_mib} MiB asked for, after ${resize_wait}s (is the volume modification still before its optimizing state?)"
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done

mkdir -p "$mountpoint_dir"
if ! mountpoint -q "$mountpoint_dir"; then
  if ext4_can_grow; then
    # Not mounted yet: resize2fs wants a checked file system first.
    e2fsck -f -p "$device" >&2
    resize2fs "$device" >&2
    log "grew the file system on $device to $(($(fs_bytes) / 1048576)) MiB"
  fi
  mount -t "$fs_type" "$device" "$mountpoint_dir"
  log "mounted $device at $mountpoint_dir"
fi
if ext4_can_grow; then
  # ext4 grows while mounted.
  resize2fs "$device" >&2
  log "grew the file system on $device to $(($(fs_bytes) / 1048576)) MiB"
elif [ "$fs_type" = xfs ]; then
  xfs_growfs "$mountpoint_dir" > /dev/null
fi
