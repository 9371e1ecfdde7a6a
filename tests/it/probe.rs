//! The outside check against local HTTP(S) servers that reproduce what
//! GitLab and the network in front of it answer (127.0.0.1 only).

use std::sync::Arc;
use std::time::Duration;

use glbox::probe::{sign_in_page, Finding};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One answer of the stub: a status line with headers, or a stall.
#[derive(Clone)]
enum Answer {
    Status(&'static str, &'static str),
    Stall(Duration),
    /// Reads the request and closes the connection without a byte.
    Hangup,
    /// Answers bytes that are not HTTP.
    Garbage,
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reply: Answer) {
    let mut buffer = [0u8; 4096];
    let _ = stream.read(&mut buffer).await;
    match reply {
        Answer::Status(status, headers) => {
            let response = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
        Answer::Stall(time) => tokio::time::sleep(time).await,
        Answer::Hangup => {}
        Answer::Garbage => {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
        }
    }
}

/// Serves `replies` in turn (the last one again and again); with `tls`, over TLS.
async fn serve(replies: Vec<Answer>, tls: Option<tokio_rustls::TlsAcceptor>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let reply = replies[n.min(replies.len() - 1)].clone();
            n += 1;
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            answer(stream, reply).await;
                        }
                    }
                    None => answer(tcp, reply).await,
                }
            });
        }
    });
    port
}

fn acceptor(cert: CertificateDer<'static>, key: &KeyPair) -> tokio_rustls::TlsAcceptor {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn ok_contains(finding: &Finding, text: &str) {
    match finding {
        Finding::Ok(evidence) => assert!(evidence.contains(text), "{evidence}"),
        other => panic!("expected a pass with {text:?}, got {other:?}"),
    }
}

fn wrong_contains(finding: &Finding, text: &str) {
    match finding {
        Finding::Wrong(evidence) => assert!(evidence.contains(text), "{evidence}"),
        other => panic!("expected a wrong answer with {text:?}, got {other:?}"),
    }
}

fn not_yet_contains(finding: &Finding, text: &str) {
    match finding {
        Finding::NotYet(evidence) => assert!(evidence.contains(text), "{evidence}"),
        other => panic!("expected a not-yet answer with {text:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_http_answers_are_told_apart() {
    let ok = serve(vec![Answer::Status("200 OK", "")], None).await;
    ok_contains(
        &sign_in_page(&format!("http://127.0.0.1:{ok}")).await,
        "200 over http",
    );

    let booting = serve(vec![Answer::Status("502 Bad Gateway", "")], None).await;
    not_yet_contains(
        &sign_in_page(&format!("http://127.0.0.1:{booting}")).await,
        "502",
    );

    let mismatch = serve(vec![Answer::Status("422 Unprocessable Entity", "")], None).await;
    wrong_contains(
        &sign_in_page(&format!("http://127.0.0.1:{mismatch}")).await,
        "external_url",
    );

    let looping = serve(
        vec![Answer::Status("302 Found", "Location: /users/sign_in\r\n")],
        None,
    )
    .await;
    wrong_contains(
        &sign_in_page(&format!("http://127.0.0.1:{looping}")).await,
        "redirect loop",
    );

    let moved = serve(
        vec![
            Answer::Status("301 Moved", "Location: /users/sign_in?x=1\r\n"),
            Answer::Status("200 OK", ""),
        ],
        None,
    )
    .await;
    ok_contains(
        &sign_in_page(&format!("http://127.0.0.1:{moved}")).await,
        "200",
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    not_yet_contains(
        &sign_in_page(&format!("http://127.0.0.1:{closed}")).await,
        "cannot connect",
    );
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_urls_own_scheme_and_host() {
    // A pass from an internal address GitLab (or something in front of it)
    // points to is not a pass for the URL users are given.
    let internal = serve(vec![Answer::Status("200 OK", "")], None).await;
    let elsewhere = serve(
        vec![Answer::Status(
            "302 Found",
            Box::leak(
                format!("Location: http://127.0.0.2:{internal}/users/sign_in\r\n").into_boxed_str(),
            ),
        )],
        None,
    )
    .await;
    wrong_contains(
        &sign_in_page(&format!("http://127.0.0.1:{elsewhere}")).await,
        "another host (127.0.0.2",
    );

    let other_port = serve(
        vec![Answer::Status(
            "301 Moved",
            Box::leak(
                format!("Location: http://127.0.0.1:{internal}/users/sign_in\r\n").into_boxed_str(),
            ),
        )],
        None,
    )
    .await;
    wrong_contains(
        &sign_in_page(&format!("http://127.0.0.1:{other_port}")).await,
        "another host",
    );

    let downgrade = serve(
        vec![Answer::Status(
            "302 Found",
            Box::leak(
                format!("Location: https://127.0.0.1:{internal}/users/sign_in\r\n")
                    .into_boxed_str(),
            ),
        )],
        None,
    )
    .await;
    wrong_contains(
        &sign_in_page(&format!("http://127.0.0.1:{downgrade}")).await,
        "switches from http to https",
    );
}

/// A connection closed without an answer is a server not ready yet (it
/// is retried); bytes that are not HTTP are something else on the port.
#[tokio::test]
async fn a_hangup_is_not_yet_and_a_foreign_protocol_is_wrong() {
    let hangup = serve(vec![Answer::Hangup], None).await;
    not_yet_contains(
        &sign_in_page(&format!("http://127.0.0.1:{hangup}")).await,
        "closed without an answer",
    );
    let garbage = serve(vec![Answer::Garbage], None).await;
    wrong_contains(
        &sign_in_page(&format!("http://127.0.0.1:{garbage}")).await,
        "not HTTP",
    );
}

#[tokio::test]
async fn a_slow_answer_is_not_yet() {
    let slow = serve(vec![Answer::Stall(Duration::from_secs(30))], None).await;
    not_yet_contains(
        &sign_in_page(&format!("http://127.0.0.1:{slow}")).await,
        "no answer within",
    );
}

/// Set in the child process that runs the certificate checks.
const TRUST_CHILD: &str = "GLBOX_TEST_PROBE_TRUST_CHILD";

/// The probe trusts a private CA only through SSL_CERT_FILE (read by its
/// native root store), an environment variable of the whole process. Every
/// test module shares this process, so the checks run in a child process
/// of this test binary that alone has SSL_CERT_FILE set: no other test
/// (nor any program one starts) ever trusts the private CA.
#[tokio::test]
async fn certificates_are_checked_for_trust_host_and_expiry() {
    const NAME: &str = "certificates_are_checked_for_trust_host_and_expiry";
    if std::env::var_os(TRUST_CHILD).is_some() {
        let ca_file =
            std::env::var_os("SSL_CERT_FILE").expect("the parent test sets SSL_CERT_FILE");
        return check_certificates(std::path::Path::new(&ca_file)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, module) = module_path!()
        .split_once("::")
        .expect("a module of the test crate");
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([&format!("{module}::{NAME}"), "--exact", "--nocapture"])
        .env(TRUST_CHILD, "1")
        .env("SSL_CERT_FILE", dir.path().join("ca.pem"))
        .output()
        .await
        .expect("run the certificate checks in a child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed;"),
        "the certificate checks in the child process:\n{stdout}\n{stderr}"
    );
}

/// The certificate checks, with `ca_file` (the process's SSL_CERT_FILE) the
/// only trusted CA.
async fn check_certificates(ca_file: &std::path::Path) {
    // A private CA, trusted through SSL_CERT_FILE, as a public one would be.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(ca_file, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: &[&str], days: i64| {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        let cert = params.signed_by(&key, &issuer).unwrap();
        acceptor(cert.der().clone(), &key)
    };

    let good = serve(
        vec![Answer::Status("200 OK", "")],
        Some(leaf(&["localhost"], 90)),
    )
    .await;
    let finding = sign_in_page(&format!("https://localhost:{good}")).await;
    ok_contains(&finding, "200 over https");
    ok_contains(&finding, "certificate valid until");

    // https down to plain http is refused, not reported as a pass.
    let plain = serve(vec![Answer::Status("200 OK", "")], None).await;
    let downgrading = serve(
        vec![Answer::Status(
            "302 Found",
            Box::leak(
                format!("Location: http://localhost:{plain}/users/sign_in\r\n").into_boxed_str(),
            ),
        )],
        Some(leaf(&["localhost"], 90)),
    )
    .await;
    wrong_contains(
        &sign_in_page(&format!("https://localhost:{downgrading}")).await,
        "switches from https to http",
    );

    let expiring = serve(
        vec![Answer::Status("200 OK", "")],
        Some(leaf(&["localhost"], 5)),
    )
    .await;
    ok_contains(
        &sign_in_page(&format!("https://localhost:{expiring}")).await,
        "WARNING: the certificate expires in",
    );

    let other_host = serve(
        vec![Answer::Status("200 OK", "")],
        Some(leaf(&["gitlab.example.com"], 90)),
    )
    .await;
    wrong_contains(
        &sign_in_page(&format!("https://localhost:{other_host}")).await,
        "another host",
    );

    let self_signed =
        rcgen::generate_simple_self_signed(vec!["wrong.example".to_string()]).unwrap();
    let stranger = serve(
        vec![Answer::Status("200 OK", "")],
        Some(acceptor(
            self_signed.cert.der().clone(),
            &self_signed.signing_key,
        )),
    )
    .await;
    wrong_contains(
        &sign_in_page(&format!("https://localhost:{stranger}")).await,
        "self-signed",
    );
}
