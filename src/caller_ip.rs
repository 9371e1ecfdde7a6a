//! Finds the caller's public IPv4 address, so SSH mode can open port 22 to
//! that /32 only when the user gave no `ssh_cidrs`.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Overrides the lookup service (tests point it at a local listener).
pub const URL_ENV_VAR: &str = "GLBOX_CALLER_IP_URL";
/// AWS's own "what is my IP" service; it answers plain HTTP with the address.
const DEFAULT_URL: &str = "http://checkip.amazonaws.com/";
const LOOKUP_DEADLINE: Duration = Duration::from_secs(5);

/// Asks the lookup service for the caller's address; `Err` says why not.
pub async fn detect() -> Result<Ipv4Addr, String> {
    let url = std::env::var(URL_ENV_VAR).unwrap_or_else(|_| DEFAULT_URL.to_string());
    match tokio::time::timeout(LOOKUP_DEADLINE, fetch(&url)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{url} did not answer within {}s",
            LOOKUP_DEADLINE.as_secs()
        )),
    }
}

async fn fetch(url: &str) -> Result<Ipv4Addr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// lookup URLs are supported"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("{url}: bad port"))?,
        ),
        None => (authority, 80),
    };
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: glbox\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    parse_response(&String::from_utf8_lossy(&response)).map_err(|e| format!("{url}: {e}"))
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
    fn rejects_errors_and_garbage() {
        assert!(parse_response("HTTP/1.1 503 Busy\r\n\r\n203.0.113.9").is_err());
        assert!(parse_response("HTTP/1.1 200 OK\r\n\r\n<html>").is_err());
        assert!(parse_response("garbage").is_err());
    }
}
