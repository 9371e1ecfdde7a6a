# glbox's nightly GitLab backup, as the bootstrap installs it (glbox puts
# these functions in front of the bootstrap, after its values): with
# backup.s3 on, GLBOX_BACKUP_SCRIPT_B64 holds /usr/local/sbin/glbox-backup
# (cloud-init/backup.sh with its values) and GLBOX_BACKUP_ON_CALENDAR when
# glbox-backup.timer runs it; empty, the timer and the script are removed.

backup_units_dir="${GLBOX_SYSTEMD_DIR:-/etc/systemd/system}"
backup_script="${GLBOX_SBIN_DIR:-/usr/local/sbin}/glbox-backup"

# The service the timer starts: one run of the script, at low priority so
# GitLab stays responsive meanwhile.
backup_service_unit() {
  cat << UNIT
[Unit]
Description=glbox: GitLab backup to S3
After=gitlab-runsvdir.service

[Service]
Type=oneshot
ExecStart=$backup_script
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
UNIT
}

# Persistent=true: a run missed while the box was off starts at the next
# boot (systemd.timer(5)).
backup_timer_unit() {
  cat << UNIT
[Unit]
Description=glbox: nightly GitLab backup to S3

[Timer]
OnCalendar=$GLBOX_BACKUP_ON_CALENDAR
Persistent=true

[Install]
WantedBy=timers.target
UNIT
}

# install_if_changed MODE FILE: stdin into FILE when it differs; says
# whether it did (status 0).
install_if_changed() {
  local mode="$1" file="$2" new
  new="$(mktemp)"
  cat > "$new"
  if cmp -s "$new" "$file"; then
    rm -f "$new"
    return 1
  fi
  mkdir -p "${file%/*}"
  install -m "$mode" "$new" "$file"
  rm -f "$new"
}

backup_schedule_remove() {
  [ -e "$backup_units_dir/glbox-backup.timer" ] || [ -e "$backup_script" ] || return 0
  systemctl disable --now glbox-backup.timer || true
  rm -f "$backup_units_dir/glbox-backup.timer" "$backup_units_dir/glbox-backup.service" "$backup_script"
  systemctl daemon-reload
  echo "backup schedule removed (backup.s3 is off)"
}

# Installs, updates or removes the timer and its script per the settings;
# touches nothing that is already as wanted.
backup_schedule() {
  if [ -z "${GLBOX_BACKUP_SCRIPT_B64:-}" ]; then
    backup_schedule_remove
    return 0
  fi
  local changed=0
  printf '%s' "$GLBOX_BACKUP_SCRIPT_B64" | base64 -d | install_if_changed 0700 "$backup_script" && changed=1
  backup_service_unit | install_if_changed 0644 "$backup_units_dir/glbox-backup.service" && changed=1
  backup_timer_unit | install_if_changed 0644 "$backup_units_dir/glbox-backup.timer" && changed=1
  if [ "$changed" = 1 ]; then
    systemctl daemon-reload
    systemctl enable glbox-backup.timer
    systemctl restart glbox-backup.timer
    echo "backup schedule: glbox-backup.timer at $GLBOX_BACKUP_ON_CALENDAR"
  elif ! systemctl is-enabled --quiet glbox-backup.timer; then
    systemctl enable --now glbox-backup.timer
  fi
}
