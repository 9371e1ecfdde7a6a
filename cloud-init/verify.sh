#!/bin/bash
# glbox verify: gather the evidence of GitLab's health on the box itself.
# glbox runs this as root (through SSM or SSH) and judges the output; the
# script only reports. Each section starts with a "=== name" line.
#
# The health endpoints are asked on 127.0.0.1, which GitLab's monitoring
# allowlist admits, so they need not be open to the internet.
set -uo pipefail

: "${GLBOX_EXTERNAL_URL:?}" "${GLBOX_EDITION:?}" "${GLBOX_OS:?}" "${GLBOX_DEEP:?}"
data_mountpoint="${GLBOX_DATA_MOUNTPOINT:-/var/opt/gitlab}"
# A plain address (glbox checks it), or empty: no test mail.
test_mail="${GLBOX_TEST_MAIL:-}"
package="gitlab-$GLBOX_EDITION"

scheme="${GLBOX_EXTERNAL_URL%%://*}"
authority="${GLBOX_EXTERNAL_URL#*://}"
authority="${authority%%/*}"
hostname="${authority%%:*}"
if [ "$authority" != "$hostname" ]; then
  port="${authority##*:}"
elif [ "$scheme" = https ]; then
  port=443
else
  port=80
fi

# endpoint PATH: the HTTP status code on one line, then the body.
endpoint() {
  local body status
  body="$(mktemp)"
  # The public name, resolved to this box (so Host and SNI are right);
  # -k: the certificate may not be issued yet.
  status="$(curl -sk -o "$body" -w '%{http_code}' --max-time 20 \
    --resolve "$hostname:$port:127.0.0.1" "$scheme://$authority$1" 2> /dev/null)" || true
  printf '%s\n' "${status:-000}"
  head -c 4000 "$body"
  printf '\n'
  rm -f "$body"
}

echo "=== liveness"
endpoint /-/liveness
echo "=== readiness"
endpoint '/-/readiness?all=1'
echo "=== health"
endpoint /-/health
echo "=== gitlab-ctl"
gitlab-ctl status 2>&1 || true
echo "=== version"
# Only an installed package counts (rpm prints "not installed" on stdout;
# dpkg keeps a version for removed packages).
if [ "$GLBOX_OS" = al2023 ]; then
  if version="$(rpm -q --qf '%{VERSION}\n' "$package" 2> /dev/null)"; then
    echo "$version"
  fi
else
  { dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$package" 2> /dev/null || true; } |
    sed -n 's/^ii  *\([0-9.]*\)-.*/\1/p'
fi
echo "=== mount"
findmnt -n -o SOURCE,FSTYPE,SIZE,AVAIL --target "$data_mountpoint" 2> /dev/null || true
echo "=== root"
findmnt -n -o SOURCE / 2> /dev/null || true
echo "=== swap"
swapon --show=NAME,SIZE --noheadings --bytes 2> /dev/null || true
echo "=== gitlab-rb"
# Whether gitlab.rb is still what the bootstrap wrote (extra-config.sh,
# which glbox puts in front of this script).
gitlab_rb_state
if [ "$GLBOX_DEEP" = 1 ]; then
  echo "=== gitlab-check"
  timeout 900 gitlab-rake gitlab:check SANITIZE=true 2>&1
  echo "glbox-exit: $?"
fi
if [ -n "$test_mail" ]; then
  echo "=== test-mail"
  # Through GitLab itself, so the SMTP settings and password are what is tested.
  timeout 600 gitlab-rails runner "Notify.test_email('$test_mail', 'GitLab on $hostname can send email', 'glbox sent this through GitLab and Amazon SES to check outbound email.').deliver_now" 2>&1
  echo "glbox-exit: $?"
fi
echo "=== end"
