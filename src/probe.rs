//! The check from outside: GitLab's sign-in page through the URL users
//! will use (`gitlab.external_url`, or `verify.url`), over that URL's
//! scheme. With https the certificate must be trusted and valid for the
//! host; its expiry is shown.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REDIRECTS: usize = 5;
/// Under this many days left, an expiring certificate is a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;
const SIGN_IN: &str = "/users/sign_in";

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    /// Worth asking again (GitLab booting, not reachable yet).
    NotYet(String),
    /// Will not heal by waiting.
    Wrong(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Option<Target> {
    let (scheme, rest) = url.split_once("://")?;
    let https = match scheme {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            (host, port.parse().ok()?)
        }
        _ => (authority, if https { 443 } else { 80 }),
    };
    Some(Target {
        https,
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// The status code and `Location` of an HTTP response head.
fn parse_head(head: &str) -> Option<(u16, Option<String>)> {
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let location = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("location"))
        .map(|(_, value)| value.trim().to_string());
    Some((status, location))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    target: &Target,
) -> std::io::Result<String> {
    let default_port = if target.https { 443 } else { 80 };
    let host = if target.port == default_port {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: glbox-verify\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
        target.path
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    // An explicit provider: other crates in the build may enable a second one.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the default provider supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Days until the certificate's notAfter, and the date itself.
fn expiry(der: &[u8]) -> Option<(i64, String)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let left = (not_after.timestamp() - i64::try_from(now).ok()?) / 86_400;
    Some((left, not_after.to_string()))
}

fn explain_tls(err: &std::io::Error, host: &str) -> Finding {
    let text = err.to_string();
    if text.contains("NotValidForName") || text.contains("not valid for name") {
        Finding::Wrong(format!(
            "the certificate is for another host, not {host} (Let's Encrypt not done yet, or a proxy's certificate?)"
        ))
    } else if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        Finding::Wrong("the certificate is not from a trusted authority (self-signed?)".into())
    } else if text.contains("Expired") || text.contains("expired") {
        Finding::Wrong("the certificate has expired".into())
    } else if text.contains("invalid peer certificate") {
        Finding::Wrong(format!("the certificate was refused: {text}"))
    } else {
        Finding::NotYet(format!("TLS handshake failed: {text}"))
    }
}

/// One request; returns the status, Location, and the certificate note.
async fn fetch(target: &Target) -> Result<(u16, Option<String>, Option<String>), Finding> {
    let address = (target.host.as_str(), target.port);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Err(_) => {
            return Err(Finding::NotYet(format!(
                "{}:{} did not answer",
                target.host, target.port
            )))
        }
        Ok(Err(e)) => {
            return Err(Finding::NotYet(format!(
                "cannot connect to {}:{} ({e}); if this lasts, check network.http_cidrs",
                target.host, target.port
            )))
        }
        Ok(Ok(tcp)) => tcp,
    };
    let exchanged = if target.https {
        let name = ServerName::try_from(target.host.clone()).map_err(|_| {
            Finding::Wrong(format!("{} is not a valid TLS server name", target.host))
        })?;
        let handshake = tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp);
        let mut tls = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Err(_) => return Err(Finding::NotYet("the TLS handshake did not finish".into())),
            Ok(result) => result.map_err(|e| explain_tls(&e, &target.host))?,
        };
        let note = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| expiry(cert.as_ref()))
            .map(|(days, date)| {
                if days < EXPIRY_WARNING_DAYS {
                    format!("WARNING: the certificate expires in {days} days ({date})")
                } else {
                    format!("certificate valid until {date}")
                }
            });
        tokio::time::timeout(RESPONSE_TIMEOUT, exchange(&mut tls, target))
            .await
            .map(|r| r.map(|head| (head, note)))
    } else {
        let mut tcp = tcp;
        tokio::time::timeout(RESPONSE_TIMEOUT, exchange(&mut tcp, target))
            .await
            .map(|r| r.map(|head| (head, None)))
    };
    let (head, note) = match exchanged {
        Err(_) => {
            return Err(Finding::NotYet(format!(
                "no answer within {}s",
                RESPONSE_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(e)) => return Err(Finding::NotYet(format!("the connection failed: {e}"))),
        Ok(Ok(answer)) => answer,
    };
    // Closed without a byte: a server starting or restarting (nginx
    // reloading, a listener whose queue is full) answers so; no answer yet.
    if head.is_empty() {
        return Err(Finding::NotYet(
            "the connection closed without an answer".into(),
        ));
    }
    let (status, location) =
        parse_head(&head).ok_or_else(|| Finding::Wrong("the answer is not HTTP".to_string()))?;
    Ok((status, location, note))
}

/// Where a redirect goes, as a full URL.
fn resolve(base: &Target, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else {
        let scheme = if base.https { "https" } else { "http" };
        format!("{scheme}://{}:{}{location}", base.host, base.port)
    }
}

fn url_of(target: &Target) -> String {
    let scheme = if target.https { "https" } else { "http" };
    format!("{scheme}://{}:{}{}", target.host, target.port, target.path)
}

/// Why a redirect to `next` leaves the URL being checked, if it does: a
/// pass must come from the external URL itself, not from another host (an
/// internal address, say) or over another scheme (https down to http).
fn leaves(origin: &Target, next: &Target) -> Option<String> {
    if next.https != origin.https {
        let (from, to) = if origin.https {
            ("https", "http")
        } else {
            ("http", "https")
        };
        Some(format!("it switches from {from} to {to}"))
    } else if !next.host.eq_ignore_ascii_case(&origin.host) || next.port != origin.port {
        Some(format!(
            "it goes to another host ({}:{}, not {}:{})",
            next.host, next.port, origin.host, origin.port
        ))
    } else {
        None
    }
}

/// Asks for the sign-in page at `url` (its root), following redirects
/// within its own scheme, host and port only.
pub async fn sign_in_page(url: &str) -> Finding {
    let base = url.trim_end_matches('/');
    let Some(mut target) = parse_url(&format!("{base}{SIGN_IN}")) else {
        return Finding::Wrong(format!("{url} is not an http(s) URL"));
    };
    let origin = target.clone();
    let mut seen = vec![target.clone()];
    for _ in 0..=MAX_REDIRECTS {
        let (status, location, note) = match fetch(&target).await {
            Ok(answer) => answer,
            Err(finding) => return finding,
        };
        let scheme = if target.https { "https" } else { "http" };
        match status {
            200 => {
                let note = note.map(|n| format!("; {n}")).unwrap_or_default();
                return Finding::Ok(format!("200 over {scheme} from {}{note}", target.host));
            }
            301 | 302 | 303 | 307 | 308 => {
                let Some(next) = location.as_deref().and_then(|l| parse_url(&resolve(&target, l))) else {
                    return Finding::Wrong(format!("{status} without a usable Location"));
                };
                if let Some(why) = leaves(&origin, &next) {
                    return Finding::Wrong(format!(
                        "{status} to {}: {why}; glbox follows redirects only within {} (the URL users are given), so the sign-in page was not reached there",
                        url_of(&next),
                        url_of(&Target { path: String::new(), ..origin.clone() })
                    ));
                }
                if seen.contains(&next) {
                    return Finding::Wrong(format!(
                        "a redirect loop ({status} back to {}{}): external_url probably does not match how GitLab is reached (a proxy doing TLS?)",
                        next.host, next.path
                    ));
                }
                seen.push(next.clone());
                target = next;
            }
            422 => {
                return Finding::Wrong(
                    "422: GitLab rejected the request; gitlab.external_url probably does not match the address used".into(),
                )
            }
            502..=504 => return Finding::NotYet(format!("{status}: GitLab is still starting")),
            other => return Finding::Wrong(format!("HTTP {other} for the sign-in page: is this GitLab?")),
        }
    }
    Finding::Wrong(format!("more than {MAX_REDIRECTS} redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        let t = parse_url("https://git.example.com/users/sign_in").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (true, "git.example.com", 443, "/users/sign_in")
        );
        let t = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.port, t.path.as_str()), (8080, "/"));
        assert!(parse_url("ftp://x").is_none());
    }

    #[test]
    fn heads_give_status_and_location() {
        let head =
            "HTTP/1.1 302 Found\r\nServer: nginx\r\nlocation: https://x/users/sign_in\r\n\r\n";
        assert_eq!(
            parse_head(head),
            Some((302, Some("https://x/users/sign_in".into())))
        );
        assert_eq!(parse_head("garbage"), None);
    }
}
