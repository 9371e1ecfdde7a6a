//! The examples at the end of each command's `--help` (clap's
//! `after_help`). Every command has some: tests/it/help.rs walks the command
//! tree, fails on a command without "Examples:", and parses every example
//! line, so an example cannot name a flag that does not exist.

pub const PLAN: &str = "\
Examples:
  glbox plan                          what `up` would create, change or replace
  glbox plan --no-bootstrap           the AWS side only, as `up --no-bootstrap` would do it
  glbox plan --output json            the same as JSON, for scripts
  glbox plan --config staging.toml    the plan of another configuration";

pub const UP: &str = "\
Examples:
  glbox up                            show the plan, ask, create or converge everything, GitLab included
  glbox up --yes                      the same without the question (needed without a terminal)
  glbox up --no-bootstrap --yes       only the AWS side: no GitLab install on the box
  glbox up --wait-email               also wait until SES has verified the email domain
  glbox up --replace-gitlab-rb        replace a gitlab.rb changed by hand on the box (a copy is kept)
  glbox up -q --yes --output json     scripts: only the result, as JSON, on stdout";

pub const STATUS: &str = "\
Examples:
  glbox status                        resources, addresses and URL of the deployment
  glbox status --show-password        also GitLab's initial root password (from SSM)
  glbox status --output json          the same as JSON, for scripts";

pub const DOWN: &str = "\
Examples:
  glbox down                          remove the deployment, keep the data volume
  glbox down --delete-data            also delete the data volume, after a final snapshot
  glbox down --delete-data --no-snapshot --yes    delete everything, no snapshot, no question
  glbox down --delete-email-identity  also delete the SES domain identity
  glbox down --delete-backups         also delete the backup bucket and the snapshots (kept by default)";

pub const VERIFY: &str = "\
Examples:
  glbox verify                        is GitLab healthy? exit 0 yes, 1 no, 2 could not check
  glbox verify --deep                 also gitlab:check and a test mail (takes minutes)
  glbox verify -q --output json       for monitoring: only the JSON report";

pub const BACKUP: &str = "\
Examples:
  glbox backup                        a snapshot and a GitLab backup to S3 now; waits for both
  glbox backup --output json          the same, the result as JSON";

pub const BACKUPS: &str = "\
Examples:
  glbox backups                       snapshots and S3 backups with their times, sizes and state
  glbox backups --output json         the same as JSON, for scripts";

pub const RESTORE: &str = "\
Examples:
  glbox restore --snapshot snap-0123456789abcdef0    a new data volume from the snapshot; the old one is kept
  glbox restore --backup 1764644400_2025_12_02_18.5.1    GitLab's restore from the S3 backup
  glbox restore --snapshot snap-0123456789abcdef0 --yes    the same without the question";

pub const SECRET: &str = "\
Examples:
  printf '%s' \"$LDAP_PASSWORD\" | glbox secret set ldap_password    store it; the next up writes it on the box
  glbox secret set ldap_password      type or paste the value (not shown), then Enter
  glbox secret set smtp_relay_password -q    the same, printing nothing but errors
  cat ca.pem | glbox secret set ldap_ca_cert    a value of many lines, from a file

Your gitlab.extra_config reads it on the box: File.read('/etc/gitlab/glbox-secrets/ldap_password')";

pub const SECRET_SET: &str = "\
Examples:
  printf '%s' \"$LDAP_PASSWORD\" | glbox secret set ldap_password    the value from standard input
  glbox secret set ldap_password      type or paste the value (not shown), then Enter
  glbox secret set oauth_secret --config staging.toml    a secret of another deployment

The value is stored as an SSM SecureString at /glbox/<name>/secrets/NAME (a new value
replaces the old); the next glbox up writes it on the box as /etc/gitlab/glbox-secrets/NAME
(0600), without its final line break.";

pub const RENDER: &str = "\
Examples:
  glbox render user-data              the cloud-config the instance gets at launch
  glbox render bootstrap              the script that installs and configures GitLab
  glbox render gitlab-rb              /etc/gitlab/gitlab.rb as glbox writes it";

pub const EMAIL: &str = "\
Examples:
  glbox email dns                     the DNS records SES needs for the email domain
  glbox email dns --zone-file         the same as BIND zone-file lines
  glbox email rotate                  new SMTP key, GitLab updated, old key deleted";

pub const EMAIL_DNS: &str = "\
Examples:
  glbox email dns                     the verification TXT record and three DKIM CNAMEs, as a table
  glbox email dns --zone-file         BIND zone-file lines, to paste into a zone
  glbox email dns --output json       the records as JSON";

pub const EMAIL_ROTATE: &str = "\
Examples:
  glbox email rotate                  ask, then rotate the SMTP key
  glbox email rotate --yes            rotate without the question (scripts, cron)";

pub const DOCTOR: &str = "\
Examples:
  glbox doctor                        check credentials, region, permissions, quota and tools
  glbox doctor --region eu-west-1     the same for another region
  glbox doctor --profile admin        the same with another AWS profile
  glbox doctor --output json          the findings as JSON";

pub const COMPLETIONS: &str = "\
Examples:
  glbox completions bash > ~/.local/share/bash-completion/completions/glbox
  glbox completions zsh > ~/.zfunc/_glbox              (with fpath+=~/.zfunc before compinit)
  glbox completions fish > ~/.config/fish/completions/glbox.fish";

pub const INIT: &str = "\
Examples:
  glbox init                          answer the questions, get a commented glbox.toml
  glbox init --force                  ask again and replace the existing glbox.toml
  glbox init --config staging.toml    write the answers to another file";

pub const LAB: &str = "\
Examples:
  glbox lab up --config lab.toml      a GitLab box per student, roster in roster.csv
  glbox lab status --config lab.toml  one line per seat, and what the lab costs an hour
  glbox lab down --config lab.toml    remove the whole lab, seats' data included
  glbox lab reap --region eu-west-1 --yes    remove every expired lab (for cron)";

pub const LAB_UP: &str = "\
Examples:
  glbox lab up --config lab.toml              make or repair every seat, then write roster.csv (0600)
  glbox lab up --config lab.toml --yes        the same without the question
  glbox lab up --no-bootstrap --yes           only the AWS side of each seat
  glbox lab up --roster class.csv --output json    the roster elsewhere, the report as JSON";

pub const LAB_STATUS: &str = "\
Examples:
  glbox lab status --config lab.toml          each seat's instance, market, URL and state
  glbox lab status --output json              the same as JSON (passwords only in the roster)";

pub const LAB_DOWN: &str = "\
Examples:
  glbox lab down --config lab.toml            show what goes, ask, remove the lab
  glbox lab down --config lab.toml --yes      the same without the question";

pub const LAB_REAP: &str = "\
Examples:
  glbox lab reap --region eu-west-1           remove every lab whose expires_at has passed
  glbox lab reap --region eu-west-1 --yes     from cron: no question
  glbox lab reap --output json --yes          what was removed and what was kept, as JSON";
