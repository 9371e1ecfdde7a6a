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
package="gitlab-$GLBOX_EDITION"

scheme="${GLBOX_EXTERNAL_URL%%://*}"
host="${GLBOX_EXTERNAL_URL#*://}"
host="${host%%/*}"

# endpoint PATH: the HTTP status code on one line, then the body.
endpoint() {
  local body status
  body="$(mktemp)"
  # -k: the certificate is for the public name, not 127.0.0.1.
  status="$(curl -sk -o "$body" -w '%{http_code}' --max-time 20 \
    -H "Host: $host" "$scheme://127.0.0.1$1" 2> /dev/null)" || true
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
if [ "$GLBOX_OS" = al2023 ]; then
  rpm -q --qf '%{VERSION}\n' "$package" 2> /dev/null || true
else
  dpkg-query -W -f='${Version}\n' "$package" 2> /dev/null | sed 's/-.*//' || true
fi
echo "=== mount"
findmnt -n -o SOURCE,FSTYPE,SIZE,AVAIL --target "$data_mountpoint" 2> /dev/null || true
echo "=== root"
findmnt -n -o SOURCE / 2> /dev/null || true
echo "=== swap"
swapon --show=NAME,SIZE --noheadings --bytes 2> /dev/null || true
if [ "$GLBOX_DEEP" = 1 ]; then
  echo "=== gitlab-check"
  timeout 900 gitlab-rake gitlab:check SANITIZE=true 2>&1
  echo "glbox-exit: $?"
fi
echo "=== end"
