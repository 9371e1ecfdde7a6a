//! Finds the caller's public IPv4 address, so SSH mode can open port 22 to
//! that /32 only when the user gave no `ssh_cidrs`.

use std::net::Ipv4Addr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Overrides the lookup service (tests point it at a local TLS listener).
pub const URL_ENV_VAR: &str = "GLBOX_CALLER_IP_URL";
/// AWS's own "what is my IP" service, over HTTPS: the answer opens port 22,
/// so it must not be something on the path could rewrite
/// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/authorizing-access-to-an-instance.html
/// names https://checkip.amazonaws.com).
const DEFAULT_URL: &str = "https://checkip.amazonaws.com/";
const LOOKUP_DEADLINE: Duration = Duration::from_secs(5);

/// The caller's address and the service that told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub address: Ipv4Addr,
    pub source: String,
}

/// Asks the lookup service for the caller's address; `Err` says why not.
pub async fn detect() -> Result<Found, String> {
    let url = std::env::var(URL_ENV_VAR).unwrap_or_else(|_| DEFAULT_URL.to_string());
    match tokio::time::timeout(LOOKUP_DEADLINE, fetch(&url)).await {
        Ok(result) => result.map(|address| Found {
            address,
            source: url,
        }),
        Err(_) => Err(format!(
            "{url} did not answer within {}s",
            LOOKUP_DEADLINE.as_secs()
        )),
    }
}

async fn fetch(url: &str) -> Result<Ipv4Addr, String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url}: only https:// lookup URLs are accepted"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("{url}: bad port"))?,
        ),
        None => (authority, 443),
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("{url}: {host} is not a valid TLS server name"))?;
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let mut stream = tokio_rustls::TlsConnector::from(crate::probe::tls_config())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("{url}: TLS: {e}"))?;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: glbox\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let mut response = Vec::new();
    // A server may close without TLS close_notify; what arrived still counts.
    let _ = (&mut stream)
        .take(64 * 1024)
        .read_to_end(&mut response)
        .await;
    let address =
        parse_response(&String::from_utf8_lossy(&response)).map_err(|e| format!("{url}: {e}"))?;
    public_unicast(address).map_err(|e| format!("{url}: {e}"))
}

/// Only an address on the public internet can be the caller's as AWS sees
/// it; anything else (0.0.0.0, private, shared, loopback, link-local,
/// multicast, broadcast, reserved, documentation) would open port 22 to the
/// wrong place. Ranges: the IANA IPv4 special-purpose address registry
/// (https://www.iana.org/assignments/iana-ipv4-special-registry/).
fn public_unicast(address: Ipv4Addr) -> Result<Ipv4Addr, String> {
    let [a, b, c, _] = address.octets();
    let special = address.is_unspecified()
        || a == 0
        || address.is_private()
        || address.is_loopback()
        || address.is_link_local()
        || address.is_multicast()
        || address.is_broadcast()
        || address.is_documentation()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240;
    if special {
        Err(format!(
            "answered {address}, which is not a public unicast address"
        ))
    } else {
        Ok(address)
    }
}

fn parse_response(response: &str) -> Result<Ipv4Addr, String> {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|line| line.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        return Err(format!("answered {:?}", head.lines().next().unwrap_or("")));
    }
    body.trim()
        .parse()
        .map_err(|_| format!("answered {:?}, which is not an IPv4 address", body.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_address_from_a_200() {
        let ip = parse_response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n203.0.113.9\n")
            .unwrap();
        assert_eq!(ip, Ipv4Addr::new(203, 0, 113, 9));
    }

    #[test]
    fn only_public_unicast_addresses_are_taken() {
        for special in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(
                public_unicast(special.parse().unwrap()).is_err(),
                "{special}"
            );
        }
        for public in ["52.95.110.1", "100.128.0.1", "198.20.0.1", "8.8.8.8"] {
            assert!(public_unicast(public.parse().unwrap()).is_ok(), "{public}");
        }
    }

    #[test]
    fn rejects_errors_and_garbage() {
        assert!(parse_response("HTTP/1.1 503 Busy\r\n\r\n203.0.113.9").is_err());
        assert!(parse_response("HTTP/1.1 200 OK\r\n\r\n<html>").is_err());
        assert!(parse_response("garbage").is_err());
    }
}
