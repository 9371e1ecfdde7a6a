//! A one-answer HTTPS server on 127.0.0.1 for "localhost", with its own
//! certificate authority: pass `SSL_CERT_FILE` = [`TlsStub::ca_file`] to
//! glbox and it trusts the stub as it would a public service.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TlsStub {
    _dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub port: u16,
}

impl TlsStub {
    /// Answers every request with `response` (a whole HTTP response).
    pub fn serving(response: &'static str) -> TlsStub {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(mut tcp) = tcp else { return };
                let Ok(mut session) = rustls::ServerConnection::new(config.clone()) else {
                    return;
                };
                let mut tls = rustls::Stream::new(&mut session, &mut tcp);
                let mut buffer = [0u8; 1024];
                if tls.read(&mut buffer).is_ok() {
                    let _ = tls.write_all(response.as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        TlsStub {
            _dir: dir,
            ca_file,
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }
}
