//! The user data and the scripts it carries, checked by the real tools:
//! `cloud-init schema`, `shellcheck`, and the data-volume script executed
//! for real against a loop device standing in for the EBS volume.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::loop_volume::{run, FakeVolume, VOLUME_ID};
use crate::common::settings;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn rendered_user_data_passes_cloud_init_schema() {
    let dir = tempfile::tempdir().unwrap();
    // The user data is the same for both access methods (SSH keys come
    // from the key pair); the OS and swap size change it.
    // A lab's seats share one user data, without a volume id.
    let volume = Some("vol-0123456789abcdef0");
    for (label, config, volume) in [
        ("ubuntu", "name = \"trial\"\n", volume),
        (
            "al2023",
            "name = \"trial\"\n[instance]\nos = \"al2023\"\nswap_gib = 8\n",
            volume,
        ),
        (
            "ubuntu-ssh",
            "name = \"trial\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"192.0.2.0/24\"]\n",
            volume,
        ),
        ("lab-seat", "name = \"class\"\n", None),
    ] {
        let text = glbox::userdata::render(&settings(config), volume);
        let path = dir.path().join(format!("{label}.yaml"));
        std::fs::write(&path, &text).unwrap();
        let out = run("cloud-init", &["schema", "-c", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}{}",
            label,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn cloud_init_schema_rejects_a_broken_config() {
    // The check above is only worth something if the validator can say no.
    let dir = tempfile::tempdir().unwrap();
    let text = glbox::userdata::render(
        &settings(
            "name = \"trial\"
",
        ),
        Some("vol-1"),
    )
    .replace("size: 2147483648", "size: lots");
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, text).unwrap();
    assert!(
        !run("cloud-init", &["schema", "-c", path.to_str().unwrap()])
            .status
            .success()
    );
}

#[test]
fn every_shell_script_passes_shellcheck() {
    let scripts = [
        "cloud-init/prepare-data.sh",
        "cloud-init/bootstrap.sh",
        "cloud-init/verify.sh",
        "cloud-init/extra-config.sh",
        "cloud-init/package-source.sh",
        "cloud-init/prefetch.sh",
        "scripts/test",
        "scripts/ensure-emulator",
        "scripts/bench",
        "scripts/demo",
        ".ci/run",
    ];
    for script in scripts {
        let out = run("shellcheck", &[repo(script).to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{script}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

fn assert_ok(out: &std::process::Output) -> String {
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "prepare-data failed:\n{log}");
    log
}

#[test]
fn prepare_data_formats_once_mounts_by_uuid_and_never_reformats() {
    let volume = FakeVolume::new();

    let first = assert_ok(&volume.prepare(&[]));
    assert!(first.contains("creating ext4"), "{first}");
    let uuid = volume.uuid();
    assert!(!uuid.is_empty());
    assert_eq!(
        volume.mounted_source().as_deref(),
        Some(volume.device.as_str())
    );
    let line = format!(
        "UUID={uuid} {} ext4 defaults,nofail 0 2",
        volume.mountpoint().display()
    );
    assert_eq!(
        volume.fstab().lines().filter(|l| *l == line).count(),
        1,
        "{}",
        volume.fstab()
    );
    assert!(
        volume.fstab().contains("UUID=root / ext4"),
        "other lines are kept"
    );
    std::fs::write(volume.mountpoint().join("repositories.marker"), "data").unwrap();

    // Run again, and again after a "reboot" (unmounted): nothing is
    // formatted, fstab gains no line, the data is still there.
    let fstab_before = volume.fstab();
    let second = assert_ok(&volume.prepare(&[]));
    assert!(second.contains("already holds ext4"), "{second}");
    volume.unmount();
    assert_ok(&volume.prepare(&[]));
    assert_eq!(volume.uuid(), uuid, "never reformatted");
    assert_eq!(volume.fstab(), fstab_before);
    assert_eq!(
        std::fs::read_to_string(volume.mountpoint().join("repositories.marker")).unwrap(),
        "data"
    );
}

#[test]
fn prepare_data_never_formats_a_device_with_a_partition_table() {
    let volume = FakeVolume::new();
    // sfdisk reads the layout from stdin; an empty GPT is enough.
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", &volume.device])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk");
    use std::io::Write;
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\n")
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());

    let refused = volume.prepare(&[]);
    assert!(!refused.status.success());
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(log.contains("not touching it"), "{log}");
    let probe = run(
        "blkid",
        &["-p", "-o", "value", "-s", "PTTYPE", &volume.device],
    );
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "gpt",
        "the partition table survives"
    );
    assert!(volume.mounted_source().is_none());
}

#[test]
fn prepare_data_falls_back_to_xen_names_and_fails_clearly_without_a_device() {
    let volume = FakeVolume::new();
    std::fs::remove_file(
        volume
            .dir
            .path()
            .join("by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"),
    )
    .unwrap();
    let log = assert_ok(&volume.prepare(&[(
        "GLBOX_XEN_DEVICES",
        &format!("/nonexistent/sdf {}", volume.device),
    )]));
    assert!(log.contains(&format!("is {}", volume.device)), "{log}");
    volume.unmount();

    let missing = volume.prepare(&[]);
    assert!(!missing.status.success());
    let log = String::from_utf8_lossy(&missing.stderr);
    assert!(
        log.contains("did not appear") && log.contains(VOLUME_ID),
        "{log}"
    );
}

/// After a ModifyVolume the device is bigger but the file system is not:
/// prepare-data grows it (once; a re-run changes nothing), and waits, up
/// to a limit, for a size the device does not show yet.
#[test]
fn prepare_data_grows_the_file_system_to_a_grown_volume() {
    let volume = FakeVolume::new();
    assert_ok(&volume.prepare(&[]));
    let before = volume.fs_bytes();
    assert!(before < 70 << 20, "{before}");

    volume.grow(128 << 20);
    let mib = (128u64).to_string();
    // Grown before it is mounted: this test machine lacks the capability
    // (CAP_SYS_RESOURCE) that resize2fs needs to grow a mounted ext4; on
    // the box, root has it and the same script grows it mounted.
    volume.unmount();
    let grown = prepare_with_size(&volume, &mib, "0");
    assert!(grown.contains("grew the file system"), "{grown}");
    let after = volume.fs_bytes();
    assert!(after > 100 << 20, "{before} -> {after}");
    let again = prepare_with_size(&volume, &mib, "0");
    assert!(!again.contains("grew"), "{again}");
    assert_eq!(volume.fs_bytes(), after);

    let missing = volume.prepare_args(&["256"], &[("GLBOX_RESIZE_WAIT", "0")]);
    assert!(!missing.status.success());
    let log = String::from_utf8_lossy(&missing.stderr);
    assert!(log.contains("not the 256 MiB asked for"), "{log}");
}

fn prepare_with_size(volume: &FakeVolume, mib: &str, wait: &str) -> String {
    assert_ok(&volume.prepare_args(&[mib], &[("GLBOX_RESIZE_WAIT", wait)]))
}
