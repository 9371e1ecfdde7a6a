//! The bootstrap script, rendered by glbox and executed for real in a
//! sandbox: stub package managers, AWS CLI and gitlab-ctl earlier on PATH
//! record every call, and the script's paths point into a temporary folder.

use std::path::Path;
use std::process::Command;

use crate::common::loop_volume::{FakeVolume, VOLUME_ID};
use crate::common::sandbox::{bootstrap_script, succeeded, Sandbox, ROOT_PASSWORD, SMTP_PASSWORD};
use crate::common::settings;
use glbox::config::Settings;

fn script_for(settings: &Settings) -> String {
    bootstrap_script(settings, "http://198.51.100.1")
}

/// Asserts `shellcheck` finds nothing in `script` (as the box gets it).
fn assert_passes_shellcheck(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sh");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("shellcheck")
        .arg(&path)
        .output()
        .expect("shellcheck (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_rendered_script_passes_shellcheck() {
    let s = settings("name = \"trial\"\n");
    assert_passes_shellcheck(&bootstrap_script(&s, "http://198.51.100.1"));
}

#[test]
fn first_run_installs_then_reruns_change_nothing_and_a_new_gitlab_rb_reconfigures_once() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n[gitlab]\nroot_email = \"admin@example.com\"\n");

    let first = succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));
    assert_eq!(
        sandbox.count("glbox-prepare-data vol-0123456789abcdef0 "),
        1
    );
    assert_eq!(sandbox.count("curl -fsSL https://packages.gitlab.com/install/repositories/gitlab/gitlab-ce/script.deb.sh"), 1);
    assert_eq!(
        sandbox.count("aws ssm get-parameter --region us-east-1 --name /glbox/trial/root-password --with-decryption"),
        1
    );
    let installs: Vec<String> = sandbox
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("apt-get"))
        .collect();
    assert_eq!(
        installs,
        vec!["apt-get install -y gitlab-ce EXTERNAL_URL=http://198.51.100.1 password=set email=admin@example.com"]
    );
    assert_eq!(
        sandbox.count("gitlab-ctl"),
        0,
        "the package's own reconfigure is enough"
    );
    let rb = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert_eq!(
        rb,
        glbox::gitlab_rb::render(&s, "http://198.51.100.1", None, None)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sandbox.path("etc-gitlab/gitlab.rb"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let log = std::fs::read_to_string(sandbox.path("log/bootstrap.log")).unwrap();
    assert!(
        log.contains("glbox-phase: package") && log.contains("glbox-result: gitlab-ce 18.6.0"),
        "{log}"
    );
    assert!(
        !log.contains(ROOT_PASSWORD) && !first.contains(ROOT_PASSWORD),
        "the password is never printed"
    );

    let second = succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));
    assert_eq!(sandbox.count("apt-get"), 0, "{second}");
    assert_eq!(sandbox.count("curl"), 0);
    assert_eq!(sandbox.count("aws"), 0);
    assert_eq!(
        sandbox.count("gitlab-ctl"),
        0,
        "nothing changed, no reconfigure"
    );

    succeeded(&sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com")));
    let reconfigures: Vec<String> = sandbox
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("gitlab-ctl"))
        .collect();
    assert_eq!(
        reconfigures,
        vec!["gitlab-ctl reconfigure EXTERNAL_URL="],
        "once, and without EXTERNAL_URL"
    );
    assert_eq!(sandbox.count("apt-get"), 0);
}

#[test]
fn the_bootstrap_formats_mounts_and_configures_once_on_a_real_device() {
    let volume = FakeVolume::new();
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n");
    let script = glbox::bootstrap::render(
        &s,
        &glbox::bootstrap::Target {
            data_volume_id: VOLUME_ID,
            external_url: "http://198.51.100.1",
            smtp_username: None,
            root_password_parameter: "/glbox/trial/root-password",
            backup_bucket: None,
        },
    )
    // The loop device is 64 MiB, not the configured GiBs.
    .replace("GLBOX_DATA_SIZE_GIB='100'", "GLBOX_DATA_SIZE_GIB='0'");
    // The real data-volume script this time, on the loop device.
    let path = |p: &Path| p.display().to_string();
    let real_volume = [
        (
            "GLBOX_PREPARE_DATA",
            path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cloud-init/prepare-data.sh")),
        ),
        ("GLBOX_DISK_BY_ID", path(&volume.dir.path().join("by-id"))),
        ("GLBOX_FSTAB", path(&volume.dir.path().join("fstab"))),
        ("GLBOX_XEN_DEVICES", "/nonexistent/sdf".to_string()),
        ("GLBOX_DEVICE_WAIT", "0".to_string()),
        ("GLBOX_DATA_MOUNTPOINT", path(&volume.mountpoint())),
    ]
    .map(|(k, v)| (k.to_string(), v));

    let first = succeeded(&sandbox.run_with(&script, &real_volume));
    assert!(first.contains("creating ext4"), "{first}");
    assert_eq!(
        volume.mounted_source().as_deref(),
        Some(volume.device.as_str())
    );
    assert!(sandbox.path("etc-gitlab/gitlab.rb").exists());
    assert_eq!(sandbox.count("apt-get"), 1);
    let uuid = volume.uuid();
    let fstab = volume.fstab();
    assert_eq!(
        fstab.matches(&format!("UUID={uuid} ")).count(),
        1,
        "{fstab}"
    );
    std::fs::write(volume.mountpoint().join("marker"), "data").unwrap();

    let second = succeeded(&sandbox.run_with(&script, &real_volume));
    assert!(second.contains("already holds ext4"), "{second}");
    assert_eq!(volume.uuid(), uuid, "not reformatted");
    assert_eq!(volume.fstab(), fstab, "no second fstab line");
    assert_eq!(
        std::fs::read_to_string(volume.mountpoint().join("marker")).unwrap(),
        "data"
    );
    assert_eq!(
        sandbox.count("apt-get") + sandbox.count("gitlab-ctl"),
        0,
        "no reinstall, no reconfigure"
    );
}

#[test]
fn pinned_versions_upgrade_through_the_stop_between_and_never_downgrade() {
    let sandbox = Sandbox::new();
    let url = "http://198.51.100.1";
    succeeded(&sandbox.run(&bootstrap_script(
        &settings("name = \"trial\"\n[gitlab]\nversion = \"17.2.1\"\n"),
        url,
    )));
    assert_eq!(
        std::fs::read_to_string(sandbox.path("installed"))
            .unwrap()
            .trim(),
        "17.2.1"
    );
    assert_eq!(
        sandbox.count("apt-get install -y gitlab-ce=17.2.1-ce.0 "),
        1
    );

    let upgrade = succeeded(&sandbox.run(&bootstrap_script(
        &settings("name = \"trial\"\n[gitlab]\nversion = \"17.4.2\"\n"),
        url,
    )));
    assert!(
        upgrade.contains("glbox-phase: upgrade stop 17.3.7 (1 of 2)"),
        "{upgrade}"
    );
    let installs: Vec<String> = sandbox
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("apt-get install"))
        .collect();
    assert_eq!(
        installs,
        vec![
            "apt-get install -y gitlab-ce=17.3.7-ce.0 EXTERNAL_URL=http://198.51.100.1 password= email=",
            "apt-get install -y gitlab-ce=17.4.2-ce.0 EXTERNAL_URL=http://198.51.100.1 password= email="
        ],
        "the required stop first; an upgrade does not pass the root password"
    );
    assert_eq!(sandbox.count("aws"), 0);
    assert_eq!(
        sandbox.count("apt-get update"),
        1,
        "fresh package lists before an upgrade"
    );

    let downgrade = sandbox.run(&bootstrap_script(
        &settings("name = \"trial\"\n[gitlab]\nversion = \"17.2.1\"\n"),
        url,
    ));
    assert_eq!(downgrade.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&downgrade.stdout).contains("refusing to downgrade"));
    assert_eq!(sandbox.count("apt-get"), 0);
    assert_eq!(
        std::fs::read_to_string(sandbox.path("installed"))
            .unwrap()
            .trim(),
        "17.4.2"
    );
}

#[test]
fn amazon_linux_uses_the_rpm_repository_and_dnf() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n[instance]\nos = \"al2023\"\n[gitlab]\nedition = \"ee\"\nversion = \"18.5.1\"\n");
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));
    assert_eq!(sandbox.count("curl -fsSL https://packages.gitlab.com/install/repositories/gitlab/gitlab-ee/script.rpm.sh"), 1);
    assert_eq!(
        sandbox
            .count("dnf install -y gitlab-ee-18.5.1 EXTERNAL_URL=http://198.51.100.1 password=set"),
        1
    );
    assert_eq!(
        sandbox.count("gitlab-ctl reconfigure"),
        1,
        "dnf does not report a failed reconfigure: run it"
    );
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));
    assert_eq!(sandbox.count("dnf"), 0);
    assert_eq!(sandbox.count("gitlab-ctl"), 0);
}

#[test]
fn a_reconfigure_that_failed_is_retried_by_the_next_run() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n");
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://198.51.100.1")));

    std::fs::write(sandbox.path("gitlab-ctl-fails"), "").unwrap();
    let failed = sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com"));
    assert!(!failed.status.success());
    std::fs::remove_file(sandbox.path("gitlab-ctl-fails")).unwrap();

    // Same configuration again: gitlab.rb is already in place, but the
    // reconfigure never finished, so it runs now, once.
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com")));
    assert_eq!(sandbox.count("gitlab-ctl reconfigure"), 1);
    succeeded(&sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com")));
    assert_eq!(sandbox.count("gitlab-ctl"), 0);
}

#[test]
fn a_new_instance_on_old_data_gets_its_secrets_back_and_no_older_version() {
    let sandbox = Sandbox::new();
    let url = "http://198.51.100.1";
    let pinned = |v: &str| settings(&format!("name = \"trial\"\n[gitlab]\nversion = \"{v}\"\n"));
    succeeded(&sandbox.run(&bootstrap_script(&pinned("17.4.2"), url)));
    let secrets = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap();

    // A replacement instance: new root disk, same data volume.
    std::fs::remove_file(sandbox.path("installed")).unwrap();
    std::fs::remove_dir_all(sandbox.path("etc-gitlab")).unwrap();
    std::fs::create_dir(sandbox.path("etc-gitlab")).unwrap();

    let older = sandbox.run(&bootstrap_script(&pinned("17.2.1"), url));
    assert_eq!(older.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&older.stdout).contains("last used by gitlab-ce 17.4.2"));
    assert!(
        String::from_utf8_lossy(&older.stdout)
            .contains("restored gitlab-secrets.json from the data volume"),
        "secrets come back before anything else happens"
    );
    assert_eq!(sandbox.count("apt-get install"), 0);

    let newer = succeeded(&sandbox.run(&bootstrap_script(&pinned("17.6.1"), url)));
    assert!(
        newer.contains("glbox-phase: upgrade stop 17.5.5 (1 of 2)"),
        "{newer}"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab-secrets.json")).unwrap(),
        secrets,
        "the data's secrets, not new ones"
    );
}

#[test]
fn it_waits_for_cloud_init_and_runs_one_at_a_time() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n");
    std::fs::create_dir(sandbox.path("cloud-init-ran")).unwrap();
    let booted = [(
        "GLBOX_CLOUD_INIT_RUN_DIR".to_string(),
        sandbox.path("cloud-init-ran").display().to_string(),
    )];
    succeeded(&sandbox.run_with(&bootstrap_script(&s, "http://198.51.100.1"), &booted));
    assert_eq!(sandbox.count("cloud-init status --wait"), 1);

    let mut holder = Command::new("flock")
        .arg(sandbox.path("lock/glbox-bootstrap.lock"))
        .args(["sleep", "5"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = sandbox.run(&bootstrap_script(&s, "http://198.51.100.1"));
    holder.kill().unwrap();
    let _ = holder.wait();
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stdout).contains("another glbox bootstrap is running"));
}

#[test]
fn a_failing_step_stops_the_script_with_its_status() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path("bin/glbox-prepare-data"),
        "#!/bin/bash\necho 'no device' >&2\nexit 7\n",
    )
    .unwrap();
    let out = sandbox.run(&bootstrap_script(
        &settings("name = \"trial\"\n"),
        "http://198.51.100.1",
    ));
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(sandbox.count("apt-get"), 0);
    assert!(!Path::new(&sandbox.path("etc-gitlab/gitlab.rb")).exists());
}

const EMAIL: &str = "name = \"trial\"\n[email]\nenabled = true\ndomain = \"example.com\"\nses_region = \"eu-west-1\"\n";

fn email_script(settings: &Settings, smtp_username: &str) -> String {
    glbox::bootstrap::render(
        settings,
        &glbox::bootstrap::Target {
            data_volume_id: "vol-0123456789abcdef0",
            external_url: "http://198.51.100.1",
            smtp_username: Some(smtp_username),
            root_password_parameter: "/glbox/trial/root-password",
            backup_bucket: None,
        },
    )
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_smtp_password_is_read_on_the_box_into_a_private_include_and_follows_rotation() {
    let sandbox = Sandbox::new();
    let s = settings(EMAIL);
    let include = sandbox.path("etc-gitlab/glbox-smtp-password.rb");

    let script = email_script(&s, "AKIAEXAMPLEKEY000001");
    assert!(!script.contains(SMTP_PASSWORD), "never in what glbox sends");
    let first = succeeded(&sandbox.run(&script));
    assert_eq!(
        sandbox.count("aws ssm get-parameter --region us-east-1 --name /glbox/trial/smtp-password --with-decryption"),
        1,
        "read from the deployment's own parameter, decrypted"
    );
    assert_eq!(
        std::fs::read_to_string(&include).unwrap(),
        format!("gitlab_rails['smtp_password'] = '{SMTP_PASSWORD}'\n")
    );
    assert_eq!(mode_of(&include), 0o600);
    let rb = std::fs::read_to_string(sandbox.path("etc-gitlab/gitlab.rb")).unwrap();
    assert!(rb.contains("gitlab_rails['smtp_user_name'] = 'AKIAEXAMPLEKEY000001'\n"));
    assert!(rb.contains("from_file '/etc/gitlab/glbox-smtp-password.rb'\n"));
    let log = std::fs::read_to_string(sandbox.path("log/bootstrap.log")).unwrap();
    assert!(
        !log.contains(SMTP_PASSWORD) && !first.contains(SMTP_PASSWORD),
        "the SMTP password is never printed"
    );

    // The same key again: nothing to reconfigure.
    succeeded(&sandbox.run(&script));
    assert_eq!(sandbox.count("gitlab-ctl"), 0);

    // A rotated key: a new user name and password, one reconfigure.
    let rotated = "BBbphbrQmrKMx42d1N6+C7VINYEBGI5v9VsZeTxwskfh";
    std::fs::write(sandbox.path("smtp-password"), format!("{rotated}\n")).unwrap();
    succeeded(&sandbox.run(&email_script(&s, "AKIAEXAMPLEKEY000002")));
    assert_eq!(sandbox.count("gitlab-ctl reconfigure"), 1);
    assert_eq!(
        std::fs::read_to_string(&include).unwrap(),
        format!("gitlab_rails['smtp_password'] = '{rotated}'\n")
    );

    // Email turned off: the password file goes, GitLab is reconfigured.
    let off = settings("name = \"trial\"\n");
    succeeded(&sandbox.run(&script_for(&off)));
    assert!(!include.exists());
    assert_eq!(sandbox.count("gitlab-ctl reconfigure"), 1);
    assert_eq!(sandbox.count("aws"), 0, "no SMTP parameter to read");
}

#[test]
fn an_unusable_smtp_password_stops_the_bootstrap_before_gitlab_rb_uses_it() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("smtp-password"), "it's-broken\n").unwrap();
    let out = sandbox.run(&email_script(&settings(EMAIL), "AKIAEXAMPLEKEY000001"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("glbox email rotate"), "{text}");
    assert!(!text.contains("it's-broken"), "{text}");
    assert!(!sandbox.path("etc-gitlab/glbox-smtp-password.rb").exists());
    assert_eq!(sandbox.count("apt-get"), 0, "stopped before installing");
}

/// A new instance on a kept data volume (`down` then `up`, a replacement,
/// a relaunched lab seat): the package finds `bootstrapped` on the data
/// volume and skips its own reconfigure (omnibus-gitlab's upgrade.rb), so
/// the bootstrap must configure GitLab itself, exactly once.
#[test]
fn a_new_instance_on_kept_data_is_configured_once_and_its_services_run() {
    for os in ["ubuntu-24.04", "al2023"] {
        let sandbox = Sandbox::new();
        let s = settings(&format!("name = \"trial\"\n[instance]\nos = \"{os}\"\n"));
        succeeded(&sandbox.run(&script_for(&s)));
        assert!(sandbox.services_running(), "{os}: first instance");
        assert!(sandbox.path("data/bootstrapped").exists());

        sandbox.new_instance();
        let out = succeeded(&sandbox.run(&script_for(&s)));
        assert_eq!(
            sandbox.reconfigures(),
            1,
            "{os}: {out}\n{:?}",
            sandbox.calls()
        );
        assert_eq!(sandbox.count("gitlab-ctl reconfigure"), 1, "{os}");
        assert!(sandbox.services_running(), "{os}: {out}");
        assert!(out.contains("glbox-result: gitlab-ce 18.6.0"), "{out}");

        // Re-run on the same instance: nothing to do.
        succeeded(&sandbox.run(&script_for(&s)));
        assert_eq!(sandbox.reconfigures(), 0, "{os}");
    }
}

#[test]
fn a_fresh_ubuntu_install_is_configured_once_by_the_package() {
    let sandbox = Sandbox::new();
    succeeded(&sandbox.run(&script_for(&settings("name = \"trial\"\n"))));
    assert_eq!(sandbox.reconfigures(), 1, "{:?}", sandbox.calls());
    assert!(sandbox.services_running());
}

#[test]
fn a_bootstrap_whose_services_do_not_run_fails() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n");
    succeeded(&sandbox.run(&script_for(&s)));
    // A service that stays down after a configuration change.
    std::fs::write(sandbox.path("services-down"), "puma\n").unwrap();
    let out = sandbox.run(&bootstrap_script(&s, "http://gitlab.example.com"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("services are not running"), "{text}");
    assert!(!text.contains("glbox-result:"), "{text}");
}

/// unattended-upgrades holds the dpkg lock at first boot: every package
/// operation waits for it (bounded) instead of failing at once.
#[test]
fn package_operations_wait_for_the_dpkg_lock_and_give_up_in_time() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n");
    std::fs::write(sandbox.path("missing-packages"), "perl\n").unwrap();
    std::fs::write(sandbox.path("apt-locked"), "").unwrap();
    let lock = sandbox.path("apt-locked");
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        std::fs::remove_file(lock).unwrap();
    });
    let out = succeeded(&sandbox.run(&script_for(&s)));
    release.join().unwrap();
    assert!(out.contains("Waiting for cache lock"), "{out}");
    assert!(out.contains("glbox-phase: package lock"), "{out}");
    assert_eq!(
        sandbox.count("apt-get install -y perl"),
        1,
        "{:?}",
        sandbox.calls()
    );
    assert!(sandbox.services_running());

    // The package lists' lock, which apt does not wait for: retried.
    let lists = Sandbox::new();
    std::fs::write(lists.path("missing-packages"), "perl\n").unwrap();
    std::fs::write(lists.path("apt-lists-locked"), "").unwrap();
    let lock = lists.path("apt-lists-locked");
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(2500));
        std::fs::remove_file(lock).unwrap();
    });
    let out = succeeded(&lists.run(&script_for(&s)));
    release.join().unwrap();
    assert!(out.contains("package lists locked"), "{out}");
    assert_eq!(lists.count("apt-get install -y perl"), 1);

    // Held for longer than the bootstrap waits: a clear failure.
    let held = Sandbox::new();
    std::fs::write(held.path("apt-locked"), "").unwrap();
    let wait = [("GLBOX_APT_LOCK_WAIT".to_string(), "1".to_string())];
    let out = held.run_with(&script_for(&s), &wait);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("Could not get lock /var/lib/dpkg/lock-frontend"),
        "{text}"
    );
}

#[test]
fn lets_encrypt_fails_the_reconfigure_until_the_name_resolves() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n[gitlab]\nexternal_url = \"https://git.example.com\"\n");
    let url = "https://git.example.com";
    let failed = sandbox.run(&bootstrap_script(&s, url));
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stdout).contains("Validation failed"));
    std::fs::write(sandbox.path("dns-resolves"), "").unwrap();
    succeeded(&sandbox.run(&bootstrap_script(&s, url)));
    assert!(sandbox.services_running());
}

#[test]
fn the_lock_lives_in_a_root_only_directory_and_is_taken_before_the_log_is_written() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n");
    succeeded(&sandbox.run(&script_for(&s)));
    assert_eq!(mode_of(&sandbox.path("lock")), 0o700);
    std::fs::remove_file(sandbox.path("log/bootstrap.log")).unwrap();
    let mut holder = Command::new("flock")
        .arg(sandbox.path("lock/glbox-bootstrap.lock"))
        .args(["sleep", "5"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = sandbox.run(&script_for(&s));
    holder.kill().unwrap();
    let _ = holder.wait();
    assert!(!busy.status.success());
    assert!(
        !sandbox.path("log/bootstrap.log").exists(),
        "the running bootstrap's log is not touched"
    );
}

const HTTPS_URL: &str = "https://git.example.com";

fn https_settings(letsencrypt: bool) -> Settings {
    settings(&format!(
        "name = \"trial\"\n[gitlab]\nexternal_url = \"{HTTPS_URL}\"\nletsencrypt = {letsencrypt}\n"
    ))
}

/// `openssl x509 -noout -<field>` of the certificate nginx serves.
fn certificate_field(sandbox: &Sandbox, field: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", &format!("-{field}"), "-in"])
        .arg(sandbox.path("etc-gitlab/ssl/git.example.com.crt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_once('=').unwrap().1.trim().to_string()
}

fn self_signed(sandbox: &Sandbox) -> bool {
    certificate_field(sandbox, "issuer") == certificate_field(sandbox, "subject")
}

fn certificate(sandbox: &Sandbox) -> Vec<u8> {
    std::fs::read(sandbox.path("etc-gitlab/ssl/git.example.com.crt")).unwrap()
}

/// https with Let's Encrypt off (`up --no-wait-dns`): Omnibus makes no
/// certificate, so without one nginx cannot start; the bootstrap puts a
/// self-signed placeholder there. Turning Let's Encrypt on later replaces
/// it with an issued one, although the placeholder is far from expiry.
#[test]
fn https_without_lets_encrypt_gets_a_placeholder_that_lets_encrypt_replaces_later() {
    let sandbox = Sandbox::new();
    let off = bootstrap_script(&https_settings(false), HTTPS_URL);
    let first = succeeded(&sandbox.run(&off));
    assert!(sandbox.services_running(), "{first}");
    assert!(self_signed(&sandbox), "{first}");
    assert_eq!(
        certificate_field(&sandbox, "subject"),
        "CN = git.example.com"
    );
    assert_eq!(
        mode_of(&sandbox.path("etc-gitlab/ssl/git.example.com.key")),
        0o600
    );
    assert!(
        first.contains("glbox-warning: nginx serves a self-signed certificate for git.example.com"),
        "{first}"
    );
    let placeholder = certificate(&sandbox);

    let second = succeeded(&sandbox.run(&off));
    assert_eq!(sandbox.reconfigures(), 0, "{second}");
    assert_eq!(sandbox.count("gitlab-ctl"), 0, "{second}");
    assert_eq!(certificate(&sandbox), placeholder, "kept");

    // A later `up` once DNS points at the box: Let's Encrypt on.
    std::fs::write(sandbox.path("dns-resolves"), "").unwrap();
    let on = bootstrap_script(&https_settings(true), HTTPS_URL);
    let third = succeeded(&sandbox.run(&on));
    assert_eq!(sandbox.reconfigures(), 1, "{third}");
    assert_eq!(sandbox.count("acme-issued git.example.com"), 1, "{third}");
    assert!(!self_signed(&sandbox), "{third}");
    assert_eq!(
        certificate_field(&sandbox, "issuer"),
        "CN = Sandbox ACME CA"
    );
    assert!(sandbox.services_running(), "{third}");
    let issued = certificate(&sandbox);

    // An issued certificate is left alone: no reconfigure, no new request.
    let fourth = succeeded(&sandbox.run(&on));
    assert_eq!(sandbox.reconfigures(), 0, "{fourth}");
    assert_eq!(sandbox.count("gitlab-ctl"), 0, "{fourth}");
    assert_eq!(certificate(&sandbox), issued);
}

/// A reconfigure can finish with Omnibus's own placeholder still in place
/// (its certificate step runs only once nginx is up): the bootstrap asks
/// for the certificate once more, and otherwise fails naming the cause.
#[test]
fn a_certificate_still_self_signed_after_reconfigure_is_renewed_once_or_fails_naming_dns() {
    let on = bootstrap_script(&https_settings(true), HTTPS_URL);

    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("nginx-late"), "").unwrap();
    std::fs::write(sandbox.path("dns-resolves"), "").unwrap();
    let out = succeeded(&sandbox.run(&on));
    assert_eq!(sandbox.count("gitlab-ctl renew-le-certs"), 1, "{out}");
    assert!(!self_signed(&sandbox), "{out}");

    let unreachable = Sandbox::new();
    std::fs::write(unreachable.path("nginx-late"), "").unwrap();
    let out = unreachable.run(&on);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert_eq!(unreachable.count("gitlab-ctl renew-le-certs"), 1, "{text}");
    assert!(
        text.contains("glbox-error: Let's Encrypt did not issue a certificate for git.example.com")
            && text.contains("ports 80 and 443"),
        "{text}"
    );
    assert!(!text.contains("glbox-result:"), "{text}");
}

// ---- the first-boot prefetch (cloud-init/prefetch.sh) ----

/// The prefetch as cloud-init runs it from the user data (the same text
/// `userdata::render` embeds), in the sandbox.
fn prefetch(sandbox: &Sandbox, settings: &Settings) -> String {
    let script = glbox::userdata::prefetch_script(settings);
    assert!(
        glbox::userdata::render(settings, None).contains(&script.replace('\n', "\n      ")[..200]),
        "the user data carries this script"
    );
    succeeded(&sandbox.run(&script))
}

fn lines_starting(sandbox: &Sandbox, prefix: &str) -> Vec<String> {
    sandbox
        .calls()
        .into_iter()
        .filter(|c| c.starts_with(prefix))
        .collect()
}

#[test]
fn the_rendered_prefetch_passes_shellcheck() {
    for config in [
        "name = \"trial\"\n",
        "name = \"trial\"\n[instance]\nos = \"al2023\"\n",
    ] {
        assert_passes_shellcheck(&glbox::userdata::prefetch_script(&settings(config)));
    }
}

#[test]
fn the_package_downloaded_at_first_boot_is_installed_without_fetching_it_again() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n[gitlab]\nversion = \"18.5.1\"\n");
    let out = prefetch(&sandbox, &s);
    assert!(
        out.contains("glbox-prefetch: gitlab-ce=18.5.1-ce.0 is downloaded"),
        "{out}"
    );
    assert_eq!(sandbox.count("curl -fsSL https://packages.gitlab.com/install/repositories/gitlab/gitlab-ce/script.deb.sh"), 1);
    assert_eq!(
        lines_starting(&sandbox, "apt-get install"),
        vec!["apt-get install --download-only -y gitlab-ce=18.5.1-ce.0 EXTERNAL_URL= password= email="],
        "downloaded only, with no secret and no URL"
    );
    assert_eq!(sandbox.count("package download 18.5.1"), 1);
    assert!(!sandbox.path("installed").exists(), "nothing installed");
    assert!(
        std::fs::read_to_string(sandbox.path("apt-conf/90glbox-lock-timeout"))
            .unwrap()
            .contains("DPkg::Lock::Timeout"),
        "the download waits for unattended-upgrades like the bootstrap"
    );

    let out = succeeded(&sandbox.run(&script_for(&s)));
    assert!(
        out.contains("installing gitlab-ce=18.5.1-ce.0, downloaded at first boot"),
        "{out}"
    );
    assert_eq!(
        sandbox.count("package download"),
        0,
        "installed from the local copy"
    );
    assert_eq!(
        sandbox.count("curl -fsSL https://packages.gitlab.com"),
        0,
        "the repository is there"
    );
    assert_eq!(
        sandbox.count("apt-get update"),
        0,
        "the prefetch's lists are fresh"
    );
    assert_eq!(
        lines_starting(&sandbox, "apt-get install"),
        vec!["apt-get install -y gitlab-ce=18.5.1-ce.0 EXTERNAL_URL=http://198.51.100.1 password=set email="]
    );
    assert!(out.contains("glbox-result: gitlab-ce 18.5.1"), "{out}");
}

#[test]
fn a_prefetch_that_could_not_reach_the_repository_leaves_everything_to_the_bootstrap() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n");
    std::fs::write(sandbox.path("offline"), "").unwrap();
    let out = prefetch(&sandbox, &s);
    assert!(
        out.contains(
            "could not add GitLab's package repository; the bootstrap fetches the package itself"
        ),
        "{out}"
    );
    assert!(!sandbox.path("var-lib-glbox/prefetched").exists());

    std::fs::remove_file(sandbox.path("offline")).unwrap();
    let out = succeeded(&sandbox.run(&script_for(&s)));
    assert_eq!(sandbox.count("curl -fsSL https://packages.gitlab.com/install/repositories/gitlab/gitlab-ce/script.deb.sh"), 1);
    assert_eq!(sandbox.count("package download 18.6.0"), 1);
    assert!(out.contains("glbox-result: gitlab-ce 18.6.0"), "{out}");
}

/// The repository was added but the download failed (or the user pinned
/// another version since the launch): the lists may be stale, so the
/// bootstrap refreshes them before it installs.
#[test]
fn a_download_that_did_not_finish_makes_the_bootstrap_refresh_the_lists_first() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n[gitlab]\nversion = \"18.5.1\"\n");
    std::fs::write(sandbox.path("apt/gitlab_gitlab-ce.list"), "").unwrap();
    std::fs::write(sandbox.path("offline"), "").unwrap();
    let out = prefetch(&sandbox, &s);
    assert!(
        out.contains("could not download gitlab-ce=18.5.1-ce.0"),
        "{out}"
    );
    std::fs::remove_file(sandbox.path("offline")).unwrap();

    succeeded(&sandbox.run(&script_for(&s)));
    let update = sandbox
        .calls()
        .iter()
        .position(|c| c.starts_with("apt-get update"));
    let install = sandbox
        .calls()
        .iter()
        .position(|c| c.starts_with("apt-get install -y gitlab-ce="));
    assert!(
        update.is_some() && update < install,
        "{:?}",
        sandbox.calls()
    );
    assert_eq!(sandbox.count("package download 18.5.1"), 1);

    // Downloaded for 18.5.1 at boot, 18.6.0 configured since: fetched anew.
    sandbox.new_instance();
    prefetch(&sandbox, &s);
    let later = settings("name = \"trial\"\n[gitlab]\nversion = \"18.6.0\"\n");
    succeeded(&sandbox.run(&script_for(&later)));
    assert_eq!(sandbox.count("apt-get update"), 1, "{:?}", sandbox.calls());
    assert_eq!(sandbox.count("package download 18.6.0"), 1);
}

#[test]
fn amazon_linux_downloads_with_dnf_and_installs_from_its_cache() {
    let sandbox = Sandbox::new();
    let s = settings("name = \"trial\"\n[instance]\nos = \"al2023\"\n[gitlab]\nedition = \"ee\"\nversion = \"18.5.1\"\n");
    prefetch(&sandbox, &s);
    assert_eq!(sandbox.count("curl -fsSL https://packages.gitlab.com/install/repositories/gitlab/gitlab-ee/script.rpm.sh"), 1);
    assert_eq!(
        sandbox.count("dnf install --downloadonly -y gitlab-ee-18.5.1 EXTERNAL_URL= password="),
        1
    );
    assert!(!sandbox.path("installed").exists());
    succeeded(&sandbox.run(&script_for(&s)));
    assert_eq!(sandbox.count("package download"), 0);
    assert_eq!(
        sandbox
            .count("dnf install -y gitlab-ee-18.5.1 EXTERNAL_URL=http://198.51.100.1 password=set"),
        1
    );
}

/// A new instance on older data walks the stops from the data's version.
/// A repository its prefetch added (whose last list refresh may have
/// failed at first boot) is not trusted for the first stop: the lists are
/// refreshed before it.
#[test]
fn a_new_instance_on_old_data_refreshes_the_lists_of_a_prefetched_repository_first() {
    let sandbox = Sandbox::new();
    let version = |v: &str| settings(&format!("name = \"trial\"\n[gitlab]\nversion = \"{v}\"\n"));
    succeeded(&sandbox.run(&script_for(&version("17.2.1"))));
    sandbox.new_instance();
    std::fs::write(sandbox.path("apt/gitlab_gitlab-ce.list"), "").unwrap();
    let out = succeeded(&sandbox.run(&script_for(&version("17.6.1"))));
    let calls = sandbox.calls();
    let update = calls.iter().position(|c| c.starts_with("apt-get update"));
    let first_stop = calls
        .iter()
        .position(|c| c.starts_with("apt-get install -y gitlab-ce=17.3.7"));
    assert!(update.is_some() && update < first_stop, "{out}\n{calls:?}");
    assert_eq!(sandbox.count("apt-get update"), 1, "{calls:?}");
}
