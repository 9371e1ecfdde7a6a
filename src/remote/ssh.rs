//! SSH with russh: the deployment's key, a verified host key (never trust
//! on first use), the script run as root through `sudo`, its output shown
//! live and its exit status passed on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::ChannelMsg;

use crate::aws::ec2::instances;
use crate::config::{Os, SshKeySource};
use crate::error::{Error, Result};
use crate::remote::Outcome;
use crate::resources::Ctx;
use crate::wait::{self, Poll};

/// The script arrives on stdin and is saved to a file before it runs (so
/// nothing it starts can read the rest of it as input); root runs it with
/// bash directly, anyone else through passwordless sudo.
const RUN_AS_ROOT: &str = r#"f="$(mktemp)" || exit 1; cat > "$f" || exit 1; if [ "$(id -u)" = 0 ]; then bash "$f"; else sudo -n bash "$f"; fi; rc=$?; rm -f "$f"; exit "$rc""#;
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
const CONSOLE_BEGIN: &str = "-----BEGIN SSH HOST KEY KEYS-----";
const CONSOLE_END: &str = "-----END SSH HOST KEY KEYS-----";

/// Instance tag holding the fingerprint of the host key glbox verified at
/// its first connection. cloud-init prints the keys to the console once per
/// instance, so after a stop/start or a reboot the console has them no
/// more: from then on this pin is what a host key is checked against.
pub const TAG_HOST_KEY: &str = "glbox:ssh-host-key";

pub struct Ssh {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub private_key: PathBuf,
    pub trust: HostKeyTrust,
    pub instance_id: String,
    /// Set once this run has pinned the console's key on the instance.
    pinned: Mutex<bool>,
}

/// Which host keys glbox accepts, and where that trust comes from.
#[derive(Debug, Clone)]
pub enum HostKeyTrust {
    /// `access.ssh_host_key`.
    Configured(Vec<PublicKey>),
    /// The fingerprint pinned on the instance ([`TAG_HOST_KEY`]).
    Pinned(String),
    /// What cloud-init printed on the instance's first boot; the key the
    /// server offers from these is pinned.
    Console(Vec<PublicKey>),
}

impl HostKeyTrust {
    fn accepts(&self, offered: &PublicKey) -> bool {
        match self {
            HostKeyTrust::Configured(keys) | HostKeyTrust::Console(keys) => {
                keys.iter().any(|k| k.key_data() == offered.key_data())
            }
            HostKeyTrust::Pinned(fingerprint) => *fingerprint == fingerprint_of(offered),
        }
    }
}

fn fingerprint_of(key: &PublicKey) -> String {
    key.fingerprint(Default::default()).to_string()
}

/// The host keys cloud-init prints to the console, between its markers.
pub fn host_keys_from_console(console: &str) -> Vec<PublicKey> {
    let Some((_, rest)) = console.split_once(CONSOLE_BEGIN) else {
        return Vec::new();
    };
    let block = rest
        .split_once(CONSOLE_END)
        .map_or(rest, |(block, _)| block);
    block
        .lines()
        .filter_map(|line| PublicKey::from_openssh(line.trim()).ok())
        .collect()
}

fn default_user(os: Os) -> &'static str {
    match os {
        Os::Ubuntu2404 => "ubuntu",
        Os::Al2023 => "ec2-user",
    }
}

/// The private key that goes with the configured (or generated) public key.
fn private_key_path(deployment: &str, source: &SshKeySource) -> Result<PathBuf> {
    match source {
        SshKeySource::Generated => Ok(crate::paths::generated_key(deployment)),
        SshKeySource::File { path, .. } => {
            let private = path.with_extension("");
            if path.extension().is_some_and(|e| e == "pub") && private.exists() {
                Ok(private)
            } else {
                Err(Error::Refused(format!(
                    "no private key found next to {} (glbox looks for {})\n  fix: keep the private key beside its .pub file",
                    path.display(),
                    private.display()
                )))
            }
        }
    }
}

/// Refuses a server whose key is not one of the expected ones, and keeps
/// the offered key's fingerprint to say so.
struct Verifier {
    trust: HostKeyTrust,
    /// The fingerprint of the key offered: accepted or refused.
    offered: Arc<Mutex<Option<(String, bool)>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let known = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                let ok = self.trust.accepts(key);
                *self.offered.lock().expect("not poisoned") = Some((fingerprint_of(key), ok));
                ok
            }
            PublicKeyOrCertificate::Certificate(_) => false,
        };
        Ok(known)
    }
}

fn ssh_error(context: &str, err: impl std::fmt::Display) -> Error {
    Error::Refused(format!("SSH {context}: {err}"))
}

impl Ssh {
    /// Works out where and how to connect, and which host keys to accept:
    /// the configured one, else those cloud-init printed to the console.
    pub async fn prepare(
        ctx: &Ctx<'_>,
        instance_id: &str,
        public_address: Option<&str>,
    ) -> Result<Ssh> {
        let settings = ctx.settings;
        let ssh = settings
            .ssh_access()
            .ok_or_else(|| Error::Refused("internal: SSH transport without SSH settings".into()))?;
        let host = settings
            .remote_host
            .clone()
            .or_else(|| public_address.map(str::to_string))
            .ok_or_else(|| {
                Error::Refused(format!(
                    "instance {instance_id} has no public address to connect to\n  fix: set access.host to an address glbox can reach (VPN, bastion forward), or network.elastic_ip = true"
                ))
            })?;
        let trust = match &ssh.host_key {
            Some(line) => HostKeyTrust::Configured(vec![
                PublicKey::from_openssh(line).map_err(|e| ssh_error("host key", e))?
            ]),
            None => match pinned_host_key(ctx, instance_id).await? {
                Some(fingerprint) => HostKeyTrust::Pinned(fingerprint),
                None => HostKeyTrust::Console(console_host_keys(ctx, instance_id).await?),
            },
        };
        Ok(Ssh {
            host,
            port: settings.remote_port,
            user: ssh
                .user
                .clone()
                .unwrap_or_else(|| default_user(settings.os).to_string()),
            private_key: private_key_path(&settings.name, &ssh.key)?,
            trust,
            instance_id: instance_id.to_string(),
            pinned: Mutex::new(false),
        })
    }

    /// Connects, checking the host key; a key first trusted from the
    /// console is pinned on the instance before anything runs.
    async fn connect(&self, ctx: &Ctx<'_>) -> Result<client::Handle<Verifier>, ConnectError> {
        let (handle, fingerprint) = self.connect_checked().await?;
        if let Err(e) = self.pin(ctx, &fingerprint).await {
            return Err(ConnectError::Failed(e));
        }
        Ok(handle)
    }

    async fn pin(&self, ctx: &Ctx<'_>, fingerprint: &str) -> Result<()> {
        if !matches!(self.trust, HostKeyTrust::Console(_))
            || *self.pinned.lock().expect("not poisoned")
        {
            return Ok(());
        }
        instances::create_tags(
            &ctx.aws.ec2,
            ctx.ui,
            &[&self.instance_id],
            &[(TAG_HOST_KEY, fingerprint)],
        )
        .await?;
        *self.pinned.lock().expect("not poisoned") = true;
        ctx.ui.info(&format!(
            "SSH host key {fingerprint} of {} verified through its console and pinned (tag {TAG_HOST_KEY})",
            self.instance_id
        ));
        Ok(())
    }

    /// A session with a server whose host key is trusted, and that key's
    /// fingerprint.
    async fn connect_checked(&self) -> Result<(client::Handle<Verifier>, String), ConnectError> {
        let offered = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            trust: self.trust.clone(),
            offered: offered.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(30)),
            ..Default::default()
        });
        let attempt = client::connect(config, (self.host.as_str(), self.port), verifier);
        match tokio::time::timeout(CONNECT_ATTEMPT_TIMEOUT, attempt).await {
            Err(_) => Err(ConnectError::NotYet("no answer".into())),
            Ok(Ok(handle)) => match offered.lock().expect("not poisoned").take() {
                Some((fingerprint, true)) => Ok((handle, fingerprint)),
                _ => Err(ConnectError::NotYet("no host key was checked".into())),
            },
            Ok(Err(e)) => match offered.lock().expect("not poisoned").take() {
                Some((fingerprint, false)) => Err(ConnectError::WrongHostKey(fingerprint)),
                _ => Err(ConnectError::NotYet(e.to_string())),
            },
        }
    }

    fn wrong_host_key(&self, fingerprint: &str) -> Error {
        let (whose, fix) = match &self.trust {
            HostKeyTrust::Pinned(pin) => (
                format!(
                    "the key pinned for {} at glbox's first connection is {pin} (tag {TAG_HOST_KEY})",
                    self.instance_id
                ),
                format!(
                    "if the box's host keys were replaced on purpose, set access.ssh_host_key to the new public key, or delete the tag {TAG_HOST_KEY} of {} while its console still shows the new keys; otherwise something is in the way of this connection: do not go on",
                    self.instance_id
                ),
            ),
            HostKeyTrust::Configured(_) => (
                "access.ssh_host_key names another key".to_string(),
                "check access.ssh_host_key; otherwise something is in the way of this connection".to_string(),
            ),
            HostKeyTrust::Console(_) => (
                format!("the console of {} shows other keys", self.instance_id),
                "if the instance was rebuilt, re-run glbox up so it reads the new key; otherwise something is in the way of this connection".to_string(),
            ),
        };
        Error::Refused(format!(
            "{}:{} offered host key {fingerprint}, which is not the instance's ({whose}): glbox will not connect (nothing was run)\n  fix: {fix}",
            self.host, self.port
        ))
    }

    pub async fn wait_ready(&self, ctx: &Ctx<'_>) -> Result<()> {
        let what = format!("sshd on {}:{}", self.host, self.port);
        wait::until(ctx.ui, &what, ctx.settings.ready_timeout, || async {
            match self.connect(ctx).await {
                Ok(handle) => {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "", "en")
                        .await;
                    Ok(Poll::Ready(()))
                }
                Err(ConnectError::NotYet(why)) => Ok(Poll::Pending(why)),
                Err(ConnectError::WrongHostKey(fingerprint)) => {
                    Err(self.wrong_host_key(&fingerprint))
                }
                Err(ConnectError::Failed(e)) => Err(e),
            }
        })
        .await
    }

    pub async fn run(
        &self,
        ctx: &Ctx<'_>,
        what: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<Outcome> {
        let mut session = match self.connect(ctx).await {
            Ok(session) => session,
            Err(ConnectError::WrongHostKey(fingerprint)) => {
                return Err(self.wrong_host_key(&fingerprint))
            }
            Err(ConnectError::Failed(e)) => return Err(e),
            Err(ConnectError::NotYet(why)) => {
                return Err(ssh_error(&format!("to {}:{}", self.host, self.port), why))
            }
        };
        self.authenticate(&mut session).await?;
        let mut channel = session
            .channel_open_session()
            .await
            .map_err(|e| ssh_error("session", e))?;
        channel
            .exec(true, RUN_AS_ROOT)
            .await
            .map_err(|e| ssh_error("exec", e))?;
        channel
            .data_bytes(script.as_bytes().to_vec())
            .await
            .map_err(|e| ssh_error("sending the script", e))?;
        channel
            .eof()
            .await
            .map_err(|e| ssh_error("sending the script", e))?;
        ctx.ui
            .info(&format!("running {what} over SSH on {}", self.host));

        let started = std::time::Instant::now();
        let mut output = String::new();
        let mut pending_line = String::new();
        let mut exit_code = None;
        let streamed = tokio::time::timeout(timeout, async {
            while let Some(message) = channel.wait().await {
                match message {
                    ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                        let text = String::from_utf8_lossy(&data);
                        output.push_str(&text);
                        pending_line.push_str(&text);
                        while let Some((line, rest)) = pending_line.split_once('\n') {
                            show_line(ctx, line, started);
                            pending_line = rest.to_string();
                        }
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        exit_code = Some(i32::try_from(exit_status).unwrap_or(i32::MAX));
                    }
                    _ => {}
                }
            }
        })
        .await;
        if !pending_line.is_empty() {
            show_line(ctx, &pending_line, started);
        }
        let _ = session
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        let status = match (&streamed, exit_code) {
            (Err(_), _) => format!("timed out after {}s", timeout.as_secs()),
            (Ok(()), Some(code)) => format!("exit {code}"),
            (Ok(()), None) => "connection closed without an exit status".to_string(),
        };
        Ok(Outcome {
            exit_code: if streamed.is_ok() { exit_code } else { None },
            status,
            output,
        })
    }

    async fn authenticate(&self, session: &mut client::Handle<Verifier>) -> Result<()> {
        let key = load_private_key(&self.private_key)?;
        let hash = session
            .best_supported_rsa_hash()
            .await
            .map_err(|e| ssh_error("negotiation", e))?
            .flatten();
        let auth = session
            .authenticate_publickey(&self.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(|e| ssh_error("authentication", e))?;
        if !auth.success() {
            return Err(Error::Refused(format!(
                "{}:{} refused the login as {} with key {}\n  fix: check access.ssh_user and that the instance was launched with this key pair",
                self.host,
                self.port,
                self.user,
                self.private_key.display()
            )));
        }
        Ok(())
    }
}

/// Shows a line of the script's output; the bootstrap's phase markers
/// stand out, with the time since the script started.
fn show_line(ctx: &Ctx<'_>, line: &str, started: std::time::Instant) {
    let line = crate::remote::printable(line);
    match line.strip_prefix("glbox-phase: ") {
        Some(phase) => ctx.ui.info(&format!(
            "phase: {phase} (after {}s)",
            started.elapsed().as_secs()
        )),
        None => ctx.ui.info(&format!("  | {line}")),
    }
}

enum ConnectError {
    NotYet(String),
    WrongHostKey(String),
    /// Connected, but the key could not be pinned.
    Failed(Error),
}

fn load_private_key(path: &Path) -> Result<russh::keys::PrivateKey> {
    russh::keys::load_secret_key(path, None).map_err(|e| {
        Error::Refused(format!(
            "cannot use the private key {}: {e}\n  fix: glbox needs an unencrypted OpenSSH private key beside the configured public key",
            path.display()
        ))
    })
}

/// The host key fingerprint pinned on the instance, if any.
async fn pinned_host_key(ctx: &Ctx<'_>, instance_id: &str) -> Result<Option<String>> {
    let instance = instances::describe_one(&ctx.aws.ec2, ctx.ui, instance_id).await?;
    Ok(instance
        .iter()
        .flat_map(|i| i.tags())
        .find(|t| t.key() == Some(TAG_HOST_KEY))
        .and_then(|t| t.value())
        .map(str::to_string))
}

/// Reads the host keys from the console output, waiting for cloud-init to
/// print them (a minute or two after boot).
async fn console_host_keys(ctx: &Ctx<'_>, instance_id: &str) -> Result<Vec<PublicKey>> {
    let what = format!("the SSH host keys of {instance_id} on its console");
    wait::until(ctx.ui, &what, ctx.settings.ready_timeout, || async {
        let output = instances::console_output(&ctx.aws.ec2, instance_id).await?;
        let text = output
            .and_then(|o| base64::engine::general_purpose::STANDARD.decode(o).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let keys = host_keys_from_console(&text);
        Ok(if keys.is_empty() {
            Poll::Pending("not printed yet".into())
        } else {
            Poll::Ready(keys)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj9ACCVXa4HVhTKD1CCXfPfBm4PNqB+p0Dw8ycZiPx4 root@box";

    #[test]
    fn host_keys_are_read_between_cloud_inits_markers() {
        let console = format!(
            "boot noise\n{CONSOLE_BEGIN}\necdsa-sha2-nistp256 not-a-key root@box\n{KEY}\n{CONSOLE_END}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOutside\n"
        );
        let keys = host_keys_from_console(&console);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0], PublicKey::from_openssh(KEY).unwrap());
        assert!(host_keys_from_console("no markers here").is_empty());
    }

    #[test]
    fn the_private_key_must_sit_beside_the_public_one() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("id.pub");
        std::fs::write(&public, KEY).unwrap();
        let source = SshKeySource::File {
            path: public.clone(),
            openssh: KEY.into(),
        };
        assert!(private_key_path("t", &source).is_err());
        std::fs::write(dir.path().join("id"), "secret").unwrap();
        assert_eq!(
            private_key_path("t", &source).unwrap(),
            dir.path().join("id")
        );
    }
}
