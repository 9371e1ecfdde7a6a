#!/bin/bash
# glbox: your own gitlab.rb settings on the box. glbox puts these functions
# in front of the bootstrap (which calls them in its configuration phase),
# of the health checks and of `plan`'s look at the box.
#
# - write_secrets: the secrets of `glbox secret set`, read from SSM with the
#   instance role into one 0600 file each under /etc/gitlab/glbox-secrets
#   (0700), for gitlab.extra_config to read; values are never printed.
# - guard_gitlab_rb / accept_gitlab_rb / record_gitlab_rb: the bootstrap
#   records the digest of the gitlab.rb it wrote; a gitlab.rb that no longer
#   matches it was changed on the box, and is not replaced unless asked.
# - gitlab_rb_state: "as-written", "changed" or "unrecorded", for verify and plan.

glbox_etc="${GLBOX_ETC_GITLAB:-/etc/gitlab}"
glbox_secrets_dir="$glbox_etc/glbox-secrets"
glbox_rb_record="$glbox_etc/.glbox-gitlab-rb.sha256"

file_sha256() {
  sha256sum < "$1" | cut -d ' ' -f 1
}

# The record holds one digest a line: any of them is glbox's.
gitlab_rb_state() {
  if [ ! -e "$glbox_etc/gitlab.rb" ] || [ ! -e "$glbox_rb_record" ]; then
    echo unrecorded
  elif grep -qxF "$(file_sha256 "$glbox_etc/gitlab.rb")" "$glbox_rb_record"; then
    echo as-written
  else
    echo changed
  fi
}

# guard_gitlab_rb NEW: may NEW replace gitlab.rb? A gitlab.rb changed by
# hand stops the bootstrap, unless GLBOX_REPLACE_GITLAB_RB=1 (up
# --replace-gitlab-rb); one glbox wrote before it recorded digests cannot be
# told apart from an edit. Replaced in either case, it is kept beside.
guard_gitlab_rb() {
  local current="$glbox_etc/gitlab.rb" state copy
  [ -e "$current" ] || return 0
  ! cmp -s "$1" "$current" || return 0
  state="$(gitlab_rb_state)"
  [ "$state" != as-written ] || return 0
  if [ "$state" = changed ] && [ "${GLBOX_REPLACE_GITLAB_RB:-0}" != 1 ]; then
    fail "$current was changed on the box; put it in extra_config or it will be replaced. Move the change into the file gitlab.extra_config names (its secrets: glbox secret set NAME), then run glbox up again; or run glbox up --replace-gitlab-rb to replace it (a copy is kept beside it). Nothing was changed."
  fi
  copy="$current.glbox-replaced-$(date -u +%Y%m%dT%H%M%SZ)"
  install -m 0600 "$current" "$copy"
  warn "the gitlab.rb on the box ($state) was replaced by glbox's; the previous one is kept at $copy"
}

# accept_gitlab_rb NEW: just before NEW replaces gitlab.rb (which the guard
# let through), both count as glbox's, so a run cut off between the two
# steps is not taken for a hand edit by the next one.
accept_gitlab_rb() {
  {
    [ ! -e "$glbox_etc/gitlab.rb" ] || file_sha256 "$glbox_etc/gitlab.rb"
    file_sha256 "$1"
  } > "$glbox_rb_record.new"
  mv -f "$glbox_rb_record.new" "$glbox_rb_record"
}

# Once gitlab.rb is written: only it is glbox's.
record_gitlab_rb() {
  local digest
  digest="$(file_sha256 "$glbox_etc/gitlab.rb")"
  if [ "$(cat "$glbox_rb_record" 2> /dev/null)" != "$digest" ]; then
    printf '%s\n' "$digest" > "$glbox_rb_record.new"
    mv -f "$glbox_rb_record.new" "$glbox_rb_record"
  fi
}

# write_secrets PENDING: the secrets GLBOX_SECRETS names ("name:version
# ..."; the versions are there so that a new value changes the script, and
# so its digest), read from GLBOX_SECRETS_PATH<name>. A changed or removed
# file marks a reconfigure pending (touches PENDING).
write_secrets() {
  local pending="$1" entry name value file new kept=" "
  if [ -z "${GLBOX_SECRETS:-}" ]; then
    if [ -d "$glbox_secrets_dir" ]; then
      rm -rf "$glbox_secrets_dir"
      touch "$pending"
      echo "secrets removed from the box (none stored for gitlab.extra_config)"
    fi
    return 0
  fi
  mkdir -p "$glbox_secrets_dir"
  chmod 0700 "$glbox_secrets_dir"
  # What an interrupted run left half-written.
  rm -f "$glbox_secrets_dir"/.new.*
  for entry in $GLBOX_SECRETS; do
    name="${entry%%:*}"
    case "$name" in
      '' | *[!a-z0-9_]*) fail "unexpected secret name $name" ;;
    esac
    kept="$kept$name "
    file="$glbox_secrets_dir/$name"
    value="$(aws ssm get-parameter --region "$GLBOX_REGION" \
      --name "$GLBOX_SECRETS_PATH$name" --with-decryption \
      --query Parameter.Value --output text)" ||
      fail "cannot read $GLBOX_SECRETS_PATH$name from SSM (does the instance role allow it?)"
    # mktemp makes the file 0600, in the 0700 folder; printf is a builtin,
    # so the value is never on a command line.
    new="$(mktemp "$glbox_secrets_dir/.new.XXXXXXXX")"
    printf '%s' "$value" > "$new"
    unset value
    if cmp -s "$new" "$file"; then
      rm -f "$new"
    else
      mv -f "$new" "$file"
      touch "$pending"
      echo "secret $name written to $file"
    fi
  done
  for file in "$glbox_secrets_dir"/*; do
    [ -e "$file" ] || continue
    name="${file##*/}"
    case "$kept" in
      *" $name "*) ;;
      *)
        rm -f "$file"
        touch "$pending"
        echo "secret $name removed from the box (no longer stored)"
        ;;
    esac
  done
}
