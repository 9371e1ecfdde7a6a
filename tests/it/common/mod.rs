//! Test harness: a private moto emulator per test (real HTTP on 127.0.0.1,
//! real AWS SDK), the glbox binary run as a user would run it, and the
//! emulator's request recorder to count what glbox sent.

pub mod loop_volume;
pub mod sandbox;
pub mod sshd;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use base64::Engine;

pub const REGION: &str = "us-east-1";

/// An SDK client of one service, pointed at the emulator with test keys.
macro_rules! client {
    ($sdk:ident, $emulator:expr) => {
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(test_credentials())
                .endpoint_url($emulator.endpoint())
                .build(),
        )
    };
}

/// One emulator process, stopped when dropped (its stdin closes).
pub struct Emulator {
    child: Child,
    /// Closing it tells the launcher to stop (and remove its recording file).
    stdin: Option<ChildStdin>,
    pub port: u16,
}

fn python() -> PathBuf {
    match std::env::var_os("TEST_MOTO_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "TEST_MOTO_PYTHON is not set: run the tests with scripts/test, which installs the pinned emulator (moto[server]==5.2.5) and sets it"
        ),
    }
}

/// Starts a helper process of the harness (the emulator, the fault proxy):
/// it prints the 127.0.0.1 port it listens on as its first line and serves
/// until its stdin closes. Returns the child, its stdin and the port.
pub fn start_port_printer(mut command: Command, what: &str) -> (Child, ChildStdin, u16) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {what}: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut first_line)
        .unwrap_or_else(|e| panic!("read the {what}'s port: {e}"));
    let port = first_line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the {what} did not print its port (got {first_line:?})"));
    (child, stdin, port)
}

/// The test account's quotas (see QUOTAS in tests/emulator/moto_launcher.py):
/// a new account's 5 Elastic IPs, but vCPUs for a 100-seat lab of
/// c5.2xlarge, as after an increase request (AWS's default, 5 vCPUs, holds
/// no c5.2xlarge). Tests that need less set it through `behave`.
pub const ACCOUNT_QUOTAS: &str = r#"{"vcpu_quota": 1024, "spot_vcpu_quota": 1024}"#;

pub fn account_quotas(command: &mut Command) {
    command.env("GLBOX_EMULATOR_QUOTAS", ACCOUNT_QUOTAS);
}

/// An x86_64 image other than `current`: setting it as `instance.ami`
/// makes the next `up` a replacement.
pub async fn other_x86_image(emulator: &Emulator, current: Option<&str>) -> String {
    let images = emulator
        .ec2()
        .describe_images()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .send()
        .await
        .unwrap();
    images
        .images()
        .iter()
        .filter_map(|i| i.image_id())
        .find(|id| Some(*id) != current)
        .unwrap()
        .to_string()
}

/// EC2, and the emulator by default, may not know an id its create call has
/// just returned ("Eventual consistency in the Amazon EC2 API",
/// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html;
/// the launcher's FRESH_ID_WINDOW_S). A test that names a resource it has
/// just made itself waits this long first, as a careful client would retry.
pub async fn past_fresh_id_window() {
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
}

/// The Python that runs the emulator and the proxy (`scripts/test` sets it).
pub fn harness_python() -> PathBuf {
    python()
}

impl Emulator {
    pub fn start() -> Emulator {
        let launcher =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/moto_launcher.py");
        let mut command = Command::new(python());
        command.arg(launcher).stderr(Stdio::null());
        account_quotas(&mut command);
        let (child, stdin, port) = start_port_printer(command, "moto launcher");
        Emulator {
            child,
            stdin: Some(stdin),
            port,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A raw HTTP/1.0 request to the emulator's control API.
    fn control(&self, method: &str, path: &str) -> String {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the emulator");
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.contains(" 200 "), "{method} {path}: {head}");
        body.to_string()
    }

    pub fn start_recording(&self) {
        self.control("POST", "/moto-api/recorder/reset-recording");
        self.control("POST", "/moto-api/recorder/start-recording");
    }

    /// Stops recording and returns the AWS requests received, in order.
    pub fn recorded(&self) -> Vec<Request> {
        self.control("POST", "/moto-api/recorder/stop-recording");
        let log = self.control("GET", "/moto-api/recorder/download-recording");
        log.lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_request)
            .collect()
    }

    /// Stops recording and returns the AWS actions received, in order.
    pub fn recorded_actions(&self) -> Vec<String> {
        self.recorded().into_iter().map(|r| r.action).collect()
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        client!(aws_sdk_ec2, self)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        client!(aws_sdk_iam, self)
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        client!(aws_sdk_ssm, self)
    }
}

fn test_credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "glbox-tests")
}

impl Drop for Emulator {
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the emulator received.
#[derive(Debug, Clone)]
pub struct Request {
    pub action: String,
    /// The decoded body (form fields for EC2/IAM, JSON for SSM).
    pub body: String,
}

/// The action of a recorded request is `X-Amz-Target` for JSON protocols
/// (SSM) and the `Action` form field for query protocols (EC2, IAM).
fn parse_request(line: &str) -> Request {
    let record: serde_json::Value = serde_json::from_str(line).expect("a recorder line is JSON");
    let body = record["body"].as_str().unwrap_or_default();
    let body = if record["body_encoded"].as_bool() == Some(true) {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
        .unwrap()
    } else {
        body.to_string()
    };
    let action = match record["headers"]["X-Amz-Target"].as_str() {
        Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
        None => match body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
        {
            Some(action) => action.to_string(),
            None => rest_name(&record),
        },
    };
    Request { action, body }
}

/// A REST request (S3, Data Lifecycle Manager, Route 53) carries no
/// action: named by its operation where `rest_operation` knows it, else by
/// its method and path, reads (GET, HEAD) as `Get ...` so that
/// `is_mutating` tells them apart.
fn rest_name(record: &serde_json::Value) -> String {
    let method = record["method"].as_str().unwrap_or_default();
    let url = record["url"].as_str().unwrap_or_default();
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    if let Some(operation) = rest_operation(method, path) {
        return operation;
    }
    match method {
        "GET" | "HEAD" => format!("Get (HTTP {method}) {path}"),
        _ => format!("{method} {path}"),
    }
}

/// Whether an action changes anything (by AWS's naming convention;
/// S3's HeadBucket and HeadObject read).
pub fn is_mutating(action: &str) -> bool {
    !["Describe", "Get", "List", "Head"]
        .iter()
        .any(|p| action.starts_with(p))
}

pub fn mutating(actions: &[String]) -> Vec<String> {
    actions.iter().filter(|a| is_mutating(a)).cloned().collect()
}

/// A working directory with a glbox.toml, a private state folder and home.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(config: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("glbox.toml"), config).unwrap();
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, config: &str) {
        std::fs::write(self.path().join("glbox.toml"), config).unwrap();
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }
}

/// What a glbox run printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "glbox failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `program` in `workspace` with the harness's clean environment: nothing
/// inherited but PATH, a private home and state folder, test keys (a test
/// may set others), no instance metadata lookups, AWS at `endpoint`, and a
/// caller-IP service that is closed (nothing may leave 127.0.0.1).
pub fn clean_command(
    program: impl AsRef<std::ffi::OsStr>,
    workspace: &Workspace,
    endpoint: &str,
) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(workspace.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", workspace.path())
        .env("XDG_STATE_HOME", workspace.state_dir())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("GLBOX_CALLER_IP_URL", "https://127.0.0.1:9/")
        // DNS lookups go to a closed local port unless a test runs a
        // resolver (tests/emulator/dns_server.py).
        .env("GLBOX_TEST_RESOLVER", "127.0.0.1:9");
    command
}

/// Runs the glbox binary in the workspace against the emulator, with a
/// clean environment: test credentials, no instance metadata lookups, and
/// a caller-IP service that is closed (nothing may leave 127.0.0.1).
pub fn glbox(emulator: &Emulator, workspace: &Workspace, args: &[&str]) -> Run {
    glbox_with_env(emulator, workspace, args, &[])
}

pub fn glbox_with_env(
    emulator: &Emulator,
    workspace: &Workspace,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = clean_command(env!("CARGO_BIN_EXE_glbox"), workspace, &emulator.endpoint());
    command.args(args).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run glbox").into()
}

/// Settings loaded from a configuration text, as glbox would load them.
pub fn settings(config: &str) -> glbox::config::Settings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glbox.toml");
    std::fs::write(&path, config).unwrap();
    glbox::config::load(&glbox::config::Sources {
        explicit_file: Some(path),
        ..glbox::config::Sources::default()
    })
    .unwrap()
}

/// The running instance of deployment `name`.
pub async fn running_instance(emulator: &Emulator, name: &str) -> aws_sdk_ec2::types::Instance {
    use aws_sdk_ec2::types::Filter;
    let out = emulator
        .ec2()
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:glbox:deployment")
                .values(name)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0].clone()
}

/// The `glbox:bootstrap` tag of deployment `name`'s instance.
pub async fn bootstrap_tag(emulator: &Emulator, name: &str) -> Option<String> {
    running_instance(emulator, name)
        .await
        .tags()
        .iter()
        .find(|t| t.key() == Some("glbox:bootstrap"))
        .and_then(|t| t.value())
        .map(str::to_string)
}

/// What `cloud-init/verify.sh` prints on a healthy box running `version`.
pub fn healthy_verify_output(version: &str) -> String {
    include_str!("../../data/verify-healthy.txt").replace("18.6.0", version)
}

/// A local HTTP server answering every request with `status` (e.g. "200 OK").
pub fn http_server(status: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let response =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

/// A `[verify]` section whose outside check goes to a local server that
/// answers 200 (never to an address the emulator made up), plus `extra`.
pub fn verify_section(extra: &str) -> String {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    let port = *PORT.get_or_init(|| http_server("200 OK"));
    format!("[verify]\nurl = \"http://127.0.0.1:{port}\"\n{extra}")
}

/// Like `client!`, for a service asked in another region than `REGION`.
macro_rules! client_in {
    ($sdk:ident, $emulator:expr, $region:expr) => {
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new($region.to_string()))
                .credentials_provider(test_credentials())
                .endpoint_url($emulator.endpoint())
                .build(),
        )
    };
}

impl Emulator {
    /// SES in `region` (the email identity's region need not be `REGION`).
    pub fn ses(&self, region: &str) -> aws_sdk_ses::Client {
        client_in!(aws_sdk_ses, self, region)
    }

    pub fn route53(&self) -> aws_sdk_route53::Client {
        client!(aws_sdk_route53, self)
    }

    /// Stops recording and returns the AWS operations received, in order:
    /// like `recorded_actions`, but Route 53's REST requests (which carry
    /// no `Action`) are named by their operation (see `rest_operation`).
    pub fn recorded_operations(&self) -> Vec<String> {
        self.control("POST", "/moto-api/recorder/stop-recording");
        let log = self.control("GET", "/moto-api/recorder/download-recording");
        log.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|line| {
                let record: serde_json::Value =
                    serde_json::from_str(line).expect("a recorder line is JSON");
                let method = record["method"].as_str().unwrap_or_default().to_string();
                let url = record["url"].as_str().unwrap_or_default().to_string();
                let path = url
                    .split_once("://")
                    .map_or(url.as_str(), |(_, rest)| {
                        rest.find('/').map_or("/", |i| &rest[i..])
                    })
                    .to_string();
                if path.starts_with("/moto-api/") {
                    return None;
                }
                Some(rest_operation(&method, &path).unwrap_or_else(|| parse_request(line).action))
            })
            .collect()
    }

    /// The emulator's whole state (`GET /moto-api/data.json`): the models of
    /// every service, by service and model name.
    /// Steers the launcher's extensions through the `/glbox-test/behaviour`
    /// parameter (see tests/emulator/moto_launcher.py).
    pub async fn behave(&self, behaviour: serde_json::Value) {
        self.ssm()
            .put_parameter()
            .name("/glbox-test/behaviour")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .value(behaviour.to_string())
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    pub fn data(&self) -> serde_json::Value {
        serde_json::from_str(&self.control("GET", "/moto-api/data.json"))
            .expect("data.json is JSON")
    }

    /// The secret the emulator handed out with IAM access key `id`, read
    /// from its state rather than from anything glbox printed.
    pub fn access_key_secret(&self, id: &str) -> String {
        let data = self.data();
        data["iam"]["AccessKey"]
            .as_array()
            .expect("the emulator's state lists IAM access keys")
            .iter()
            .find(|k| k["access_key_id"] == id)
            .unwrap_or_else(|| panic!("the emulator has no access key {id}"))["secret_access_key"]
            .as_str()
            .expect("an access key has a secret")
            .to_string()
    }
}

/// The Route 53 operation of a REST request (`/2013-04-01/...`), by method
/// and path; `None` for other services. Unknown Route 53 requests count as
/// mutating unless they are GETs.
pub fn rest_operation(method: &str, path: &str) -> Option<String> {
    let (bare, query) = path.split_once('?').unwrap_or((path, ""));
    if let Some(operation) =
        dlm_operation(method, bare).or_else(|| s3_operation(method, bare, query))
    {
        return Some(operation.to_string());
    }
    let path = bare;
    let rest = path.strip_prefix("/2013-04-01/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let operation = match (method, parts.as_slice()) {
        ("GET", ["hostedzone"]) => "ListHostedZones",
        ("POST", ["hostedzone"]) => "CreateHostedZone",
        ("GET", ["hostedzone", _]) => "GetHostedZone",
        ("DELETE", ["hostedzone", _]) => "DeleteHostedZone",
        ("GET", ["hostedzone", _, "rrset"]) => "ListResourceRecordSets",
        ("POST", ["hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        ("GET", ["change", _]) => "GetChange",
        ("GET", _) => return Some(format!("GetRoute53 {path}")),
        _ => return Some(format!("Route53 {method} {path}")),
    };
    Some(operation.to_string())
}

/// Data Lifecycle Manager's REST operations
/// (https://docs.aws.amazon.com/dlm/latest/APIReference/API_Operations.html).
fn dlm_operation(method: &str, path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    Some(match (method, parts.as_slice()) {
        ("GET", ["policies"]) => "GetLifecyclePolicies",
        ("POST", ["policies"]) => "CreateLifecyclePolicy",
        ("GET", ["policies", _]) => "GetLifecyclePolicy",
        ("PATCH", ["policies", _]) => "UpdateLifecyclePolicy",
        ("DELETE", ["policies", _]) => "DeleteLifecyclePolicy",
        _ => return None,
    })
}

/// The S3 operations glbox sends to its buckets (`glbox-*`, path style),
/// by method and subresource.
fn s3_operation(method: &str, path: &str, query: &str) -> Option<&'static str> {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let bucket = parts.next()?;
    if !bucket.starts_with("glbox-") {
        return None;
    }
    let object = parts.next().is_some();
    let has = |sub: &str| {
        query
            .split('&')
            .any(|q| q == sub || q.starts_with(&format!("{sub}=")))
    };
    let bucket_level = [
        ("tagging", "BucketTagging"),
        ("encryption", "BucketEncryption"),
        ("publicAccessBlock", "PublicAccessBlock"),
        ("versioning", "BucketVersioning"),
        ("lifecycle", "BucketLifecycleConfiguration"),
        ("policy", "BucketPolicy"),
    ];
    if !object {
        for (sub, name) in bucket_level {
            if has(sub) {
                return Some(match (method, name) {
                    ("GET", "BucketTagging") => "GetBucketTagging",
                    ("PUT", "BucketTagging") => "PutBucketTagging",
                    ("GET", "BucketEncryption") => "GetBucketEncryption",
                    ("PUT", "BucketEncryption") => "PutBucketEncryption",
                    ("GET", "PublicAccessBlock") => "GetPublicAccessBlock",
                    ("PUT", "PublicAccessBlock") => "PutPublicAccessBlock",
                    ("DELETE", "PublicAccessBlock") => "DeletePublicAccessBlock",
                    ("GET", "BucketVersioning") => "GetBucketVersioning",
                    ("PUT", "BucketVersioning") => "PutBucketVersioning",
                    ("GET", "BucketLifecycleConfiguration") => "GetBucketLifecycleConfiguration",
                    ("PUT", "BucketLifecycleConfiguration") => "PutBucketLifecycleConfiguration",
                    ("GET", "BucketPolicy") => "GetBucketPolicy",
                    ("PUT", "BucketPolicy") => "PutBucketPolicy",
                    ("DELETE", "BucketPolicy") => "DeleteBucketPolicy",
                    _ => return None,
                });
            }
        }
    }
    Some(match (method, object) {
        ("HEAD", false) => "HeadBucket",
        ("PUT", false) => "CreateBucket",
        ("DELETE", false) => "DeleteBucket",
        ("POST", false) if has("delete") => "DeleteObjects",
        ("GET", false) if has("versions") => "ListObjectVersions",
        ("GET", false) if has("location") => "GetBucketLocation",
        ("GET", false) => "ListObjectsV2",
        ("PUT", true) => "PutObject",
        ("GET", true) => "GetObject",
        _ => return None,
    })
}

/// Like `glbox`, but the run may take at most `limit`: past it the process
/// is killed and the test fails with what it printed so far (for commands
/// that wait, like `up --wait-email`, whose own deadline is long).
pub fn glbox_within(
    emulator: &Emulator,
    workspace: &Workspace,
    args: &[&str],
    limit: std::time::Duration,
) -> Run {
    let mut child = clean_command(env!("CARGO_BIN_EXE_glbox"), workspace, &emulator.endpoint())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run glbox");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let run = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(
        status.is_some(),
        "glbox {args:?} still ran after {limit:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// The script as rendered, out of the wrapper glbox runs every script in
/// (the wrapper keeps its output on the box; see `glbox::remote`).
pub fn inside_wrapper(sent: &str) -> &str {
    sent.split_once("\n{\n")
        .and_then(|(_, rest)| rest.rsplit_once("} 2>&1 | tee "))
        .map_or(sent, |(script, _)| script)
}
