//! A 64 MiB file on a loop device, posing as the EBS data volume, with the
//! `/dev/disk/by-id` name a Nitro instance would give it. Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed for this test (scripts/test installs it): {e}")
        })
}

/// A 64 MiB file on a loop device, posing as the EBS volume, with the
/// `/dev/disk/by-id` name a Nitro instance would give it.
pub struct FakeVolume {
    pub dir: tempfile::TempDir,
    pub device: String,
    _exclusive: std::sync::MutexGuard<'static, ()>,
}

pub const VOLUME_ID: &str = "vol-0123456789abcdef0";

/// Loop-device tests run one at a time: attaching two at once can race.
static LOOP_DEVICES: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl FakeVolume {
    pub fn new() -> FakeVolume {
        let exclusive = LOOP_DEVICES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let out = run("losetup", &["--find", "--show", image.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "losetup failed (the sandbox test needs root and loop devices): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device = String::from_utf8(out.stdout).unwrap().trim().to_string();
        std::fs::create_dir_all(dir.path().join("by-id")).unwrap();
        std::os::unix::fs::symlink(
            &device,
            dir.path()
                .join("by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("fstab"),
            "# the box's own line\nUUID=root / ext4 defaults 0 1\n",
        )
        .unwrap();
        FakeVolume {
            dir,
            device,
            _exclusive: exclusive,
        }
    }

    pub fn mountpoint(&self) -> PathBuf {
        self.dir.path().join("var-opt-gitlab")
    }

    pub fn fstab(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fstab")).unwrap()
    }

    /// Runs the script as the box would, with the test's paths.
    pub fn prepare(&self, env: &[(&str, &str)]) -> std::process::Output {
        self.prepare_args(&[], env)
    }

    /// Runs the script with `extra` arguments after the volume id and mount point.
    pub fn prepare_args(&self, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut command = Command::new("bash");
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("cloud-init/prepare-data.sh"))
            .arg(VOLUME_ID)
            .arg(self.mountpoint())
            .args(extra)
            .env("GLBOX_LOCK_DIR", self.dir.path().join("lock"))
            .env("GLBOX_DISK_BY_ID", self.dir.path().join("by-id"))
            .env("GLBOX_FSTAB", self.dir.path().join("fstab"))
            .env("GLBOX_XEN_DEVICES", "/nonexistent/sdf")
            .env("GLBOX_DEVICE_WAIT", "0");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }

    pub fn uuid(&self) -> String {
        let out = run("blkid", &["-p", "-o", "value", "-s", "UUID", &self.device]);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn mounted_source(&self) -> Option<String> {
        let out = run(
            "findmnt",
            &["-n", "-o", "SOURCE", self.mountpoint().to_str().unwrap()],
        );
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
    }

    pub fn unmount(&self) {
        if self.mounted_source().is_some() {
            run("umount", &[self.mountpoint().to_str().unwrap()]);
        }
    }
}

impl Drop for FakeVolume {
    fn drop(&mut self) {
        self.unmount();
        run("losetup", &["-d", &self.device]);
    }
}

impl FakeVolume {
    /// The volume grown to `bytes`, as EBS shows it once a ModifyVolume is
    /// "optimizing": a bigger device under the same file system.
    pub fn grow(&self, bytes: u64) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.path().join("disk.img"))
            .unwrap()
            .set_len(bytes)
            .unwrap();
        let out = run("losetup", &["--set-capacity", &self.device]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The file system's size in bytes, as the mounted system reports it.
    pub fn fs_bytes(&self) -> u64 {
        let out = run(
            "findmnt",
            &[
                "-n",
                "-b",
                "-o",
                "SIZE",
                self.mountpoint().to_str().unwrap(),
            ],
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}
