//! A sandbox for the bootstrap script: stub package managers, AWS CLI and
//! gitlab-ctl earlier on PATH record every call, and the script's paths
//! point into a temporary folder.

use std::path::PathBuf;
use std::process::{Command, Output};

pub const ROOT_PASSWORD: &str = "Sandbox-Root-Password-1";
/// What the `aws` stub answers for the SMTP password parameter, unless a
/// test writes another into `$SANDBOX/smtp-password`.
pub const SMTP_PASSWORD: &str = "BMXhUYlu5Z3gSXVQORxlVa7XPaz91aGWdfHxvkOZdWZ2";

/// Stubs append "<command> <args> [env markers]" to $SANDBOX/calls.log.
/// The installed version lives in $SANDBOX/installed.
pub const STUBS: &[(&str, &str)] = &[
    (
        "apt-get",
        r#"echo "apt-get $* EXTERNAL_URL=${EXTERNAL_URL:-} password=${GITLAB_ROOT_PASSWORD:+set} email=${GITLAB_ROOT_EMAIL:-}" >> "$SANDBOX/calls.log"
[ "$1" = install ] || exit 0
spec="${*: -1}"
case "$spec" in
  *=*) version="${spec#*=}"; echo "${version%%-*}" > "$SANDBOX/installed" ;;
  *) echo "18.6.0" > "$SANDBOX/installed" ;;
esac
# The package's reconfigure creates GitLab's secrets when there are none.
[ -e "$GLBOX_ETC_GITLAB/gitlab-secrets.json" ] || echo "secrets-$RANDOM$RANDOM" > "$GLBOX_ETC_GITLAB/gitlab-secrets.json""#,
    ),
    (
        "dnf",
        r#"echo "dnf $* EXTERNAL_URL=${EXTERNAL_URL:-} password=${GITLAB_ROOT_PASSWORD:+set}" >> "$SANDBOX/calls.log"
[ "$1" = install ] || exit 0
spec="${*: -1}"
case "$spec" in
  gitlab-e?-*) echo "${spec#gitlab-e?-}" > "$SANDBOX/installed" ;;
  *) echo "18.6.0" > "$SANDBOX/installed" ;;
esac"#,
    ),
    (
        "dpkg-query",
        r#"[ -s "$SANDBOX/installed" ] || exit 1
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
    echo 'touch "$GLBOX_APT_SOURCES/gitlab_gitlab-ce.list" "$GLBOX_YUM_REPOS/gitlab_gitlab-ee.repo"'
    exit 0 ;;
esac
# A health endpoint: answers from $SANDBOX/http/<name>.{code,body}, else
# healthy ones; <name>.fail-times makes the first N answers a 502.
out=""; prev=""
for arg in "$@"; do [ "$prev" = -o ] && out="$arg"; prev="$arg"; done
url="${*: -1}"; name="${url##*/-/}"; name="${name%%\?*}"
dir="$SANDBOX/http"
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
  *smtp-password*) cat "$SANDBOX/smtp-password" ;;
  *) echo "Sandbox-Root-Password-1" ;;
esac"#,
    ),
    (
        "gitlab-ctl",
        r#"echo "gitlab-ctl $* EXTERNAL_URL=${EXTERNAL_URL:-}" >> "$SANDBOX/calls.log"
if [ "$1" = status ]; then
  echo "run: puma: (pid 1234) 345s; run: log: (pid 1200) 400s"
  echo "run: sidekiq: (pid 1240) 340s; run: log: (pid 1210) 400s"
  exit 0
fi
# A test makes reconfigure fail by creating this file.
[ ! -e "$SANDBOX/gitlab-ctl-fails" ]"#,
    ),
    (
        "findmnt",
        r#"case "$*" in
  *--target*) cat "$SANDBOX/findmnt-data" 2>/dev/null || echo "/dev/nvme1n1 ext4 98.1G 90.2G" ;;
  *) echo "/dev/nvme0n1p1" ;;
esac"#,
    ),
    (
        "gitlab-rake",
        r#"echo "Checking GitLab subtasks ..."
echo "All migrations up? ... yes"
cat "$SANDBOX/gitlab-check" 2>/dev/null || true"#,
    ),
    ("swapon", r#"echo "/swapfile 2147483648""#),
    (
        "gitlab-rails",
        r#"echo "gitlab-rails $*" >> "$SANDBOX/calls.log"
# A test makes the mail fail by writing the error into this file.
if [ -e "$SANDBOX/mail-fails" ]; then
  cat "$SANDBOX/mail-fails"
  exit 1
fi"#,
    ),
    (
        "cloud-init",
        r#"echo "cloud-init $*" >> "$SANDBOX/calls.log""#,
    ),
    (
        "glbox-prepare-data",
        r#"echo "glbox-prepare-data $*" >> "$SANDBOX/calls.log""#,
    ),
];

pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for sub in ["etc-gitlab", "apt", "yum", "log", "data", "lock"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(
            dir.path().join("smtp-password"),
            format!("{SMTP_PASSWORD}\n"),
        )
        .unwrap();
        for (name, body) in STUBS {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox { dir }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The environment that points the bootstrap at the sandbox.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = |sub: &str| self.path(sub).display().to_string();
        vec![
            (
                "PATH".into(),
                format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", path("bin")),
            ),
            ("SANDBOX".into(), self.dir.path().display().to_string()),
            ("GLBOX_ETC_GITLAB".into(), path("etc-gitlab")),
            ("GLBOX_LOG_DIR".into(), path("log")),
            ("GLBOX_PREPARE_DATA".into(), path("bin/glbox-prepare-data")),
            ("GLBOX_APT_SOURCES".into(), path("apt")),
            ("GLBOX_YUM_REPOS".into(), path("yum")),
            ("GLBOX_DATA_MOUNTPOINT".into(), path("data")),
            ("GLBOX_LOCK_DIR".into(), path("lock")),
            // No cloud-init run on this machine: the wait is skipped.
            ("GLBOX_CLOUD_INIT_RUN_DIR".into(), path("no-cloud-init")),
        ]
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
        std::fs::read_to_string(self.path("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}
