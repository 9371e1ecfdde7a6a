//! A real OpenSSH `sshd` on 127.0.0.1 for one test: its own host key, one
//! authorised client key, and optionally a ForceCommand that runs whatever
//! the client asks for inside a bootstrap sandbox.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "glbox-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (scripts/test installs openssh-server)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Starts sshd; with `sandbox_env`, every session runs the client's
    /// command under that environment (a ForceCommand wrapper).
    pub fn start(sandbox_env: Option<&[(String, String)]>) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        keygen(&path("host_key"));
        keygen(&path("client_key"));
        keygen(&path("other_host_key"));
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).unwrap();
        // sshd insists on its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\nLogLevel ERROR\n",
            path("host_key").display(),
            path("authorized_keys").display()
        );
        if let Some(env) = sandbox_env {
            let assignments: Vec<String> = env.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
            let wrapper = path("sandbox-shell");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/bash\nexec env -i {} bash -c \"$SSH_ORIGINAL_COMMAND\"\n",
                    assignments.join(" ")
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
            config.push_str(&format!("ForceCommand {}\n", wrapper.display()));
        }
        std::fs::write(path("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/sbin/sshd (scripts/test installs openssh-server)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd { child, dir, port }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `[access]` section that makes glbox use this sshd.
    pub fn access_config(&self, host_key: &str) -> String {
        format!(
            "[access]\nmethod = \"ssh\"\nssh_public_key = \"{}\"\nssh_cidrs = [\"192.0.2.0/24\"]\nhost = \"127.0.0.1\"\nport = {}\nssh_user = \"root\"\nssh_host_key = \"{}\"\n",
            self.file("client_key.pub").display(),
            self.port,
            self.file(host_key).display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
