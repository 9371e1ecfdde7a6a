//! Does public DNS answer the external URL's name with the box's address?
//! Let's Encrypt issues a certificate only when it does, so glbox asks
//! before it runs an install with Let's Encrypt on.
//!
//! glbox asks public resolvers (Cloudflare's and Google's), not the system
//! resolver: Let's Encrypt resolves the name with its own recursive
//! resolvers, and the local one is the likeliest to hold a negative answer
//! cached from before the record existed (or a split-horizon view that the
//! internet does not see). The name counts as pointing at the box when at
//! least one resolver answers exactly the address and none answers another
//! (a stale record still cached there may be what Let's Encrypt sees).
//!
//! The query is a plain DNS message over UDP (RFC 1035, section 4), for
//! A records only: the instances glbox launches have no IPv6 address.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::error::Result;
use crate::ui::Ui;
use crate::wait::{self, Poll};

/// Where the tests' DNS server listens (`host:port`, comma-separated);
/// real use never sets it.
pub const RESOLVER_ENV_VAR: &str = "GLBOX_TEST_RESOLVER";

const PUBLIC_RESOLVERS: [&str; 2] = ["1.1.1.1:53", "8.8.8.8:53"];
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u16 = 3;

/// The resolvers glbox asks.
pub fn resolvers() -> Vec<SocketAddr> {
    let configured = std::env::var(RESOLVER_ENV_VAR).unwrap_or_default();
    let list: Vec<&str> = match configured.trim() {
        "" => PUBLIC_RESOLVERS.to_vec(),
        text => text.split(',').map(str::trim).collect(),
    };
    list.iter().filter_map(|a| a.parse().ok()).collect()
}

/// One resolver's answer for the name's A records.
type Answer = std::result::Result<Vec<Ipv4Addr>, String>;

/// `Ok` when public DNS answers `host` with exactly `address`; else what
/// the resolvers answered, for people.
pub async fn points_at(host: &str, address: Ipv4Addr) -> std::result::Result<(), String> {
    judge(host, address, &ask(host).await)
}

/// What the resolvers answered, when at least one answered and public DNS
/// does not point `host` at `address`; `None` when it does, or when no
/// resolver could be asked (that is no proof either way).
pub async fn points_elsewhere(host: &str, address: Ipv4Addr) -> Option<String> {
    let answers = ask(host).await;
    if !answers.iter().any(|(_, answer)| answer.is_ok()) {
        return None;
    }
    judge(host, address, &answers).err()
}

async fn ask(host: &str) -> Vec<(SocketAddr, Answer)> {
    let mut answers = Vec::new();
    for server in resolvers() {
        answers.push((server, query_a(server, host).await));
    }
    answers
}

fn judge(
    host: &str,
    address: Ipv4Addr,
    answers: &[(SocketAddr, Answer)],
) -> std::result::Result<(), String> {
    let exact = |a: &Answer| a.as_ref().is_ok_and(|ips| ips == &[address]);
    let other = |a: &Answer| {
        a.as_ref()
            .is_ok_and(|ips| !ips.is_empty() && ips != &[address])
    };
    if answers.iter().any(|(_, a)| exact(a)) && !answers.iter().any(|(_, a)| other(a)) {
        return Ok(());
    }
    let seen: Vec<String> = answers
        .iter()
        .map(|(server, answer)| match answer {
            Ok(ips) if ips.is_empty() => format!("{} has no A record for {host}", server.ip()),
            Ok(ips) => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                format!("{} answers {}", server.ip(), ips.join(", "))
            }
            Err(e) => format!("{}: {e}", server.ip()),
        })
        .collect();
    Err(seen.join("; "))
}

/// Waits until public DNS answers `host` with `address`, saying what the
/// resolvers answer meanwhile.
pub async fn wait_points_at(
    ui: &Ui,
    host: &str,
    address: Ipv4Addr,
    deadline: Duration,
) -> Result<()> {
    let what = format!("public DNS to answer {host} A {address}");
    wait::until(ui, &what, deadline, || async {
        Ok(match points_at(host, address).await {
            Ok(()) => Poll::Ready(()),
            Err(seen) => Poll::Pending(seen),
        })
    })
    .await
}

/// Asks `server` for the A records of `name` (recursion desired).
async fn query_a(server: SocketAddr, name: &str) -> Answer {
    let id: u16 = rand::random();
    let query = encode_query(id, name)?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("a valid address")
    } else {
        "[::]:0".parse().expect("a valid address")
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    // Connected: only the server's answers arrive, and a closed port is
    // reported at once instead of after the timeout.
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(&query).await.map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 1500];
    let received = tokio::time::timeout(QUERY_TIMEOUT, socket.recv(&mut buffer))
        .await
        .map_err(|_| format!("no answer within {}s", QUERY_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    decode_a_records(id, &buffer[..received])
}

fn encode_query(id: u16, name: &str) -> std::result::Result<Vec<u8>, String> {
    // Header: id, flags with RD (recursion desired), one question.
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend(id.to_be_bytes());
    out.extend(0x0100u16.to_be_bytes());
    out.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name} is not a DNS name"));
        }
        out.push(u8::try_from(label.len()).expect("checked above"));
        out.extend(label.as_bytes());
    }
    out.push(0);
    out.extend(TYPE_A.to_be_bytes());
    out.extend(CLASS_IN.to_be_bytes());
    Ok(out)
}

fn u16_at(message: &[u8], at: usize) -> std::result::Result<u16, String> {
    message
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "a truncated answer".to_string())
}

/// The position after the (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> std::result::Result<usize, String> {
    loop {
        let length = *message.get(at).ok_or("a truncated name")?;
        match length {
            0 => return Ok(at + 1),
            // A pointer (RFC 1035, 4.1.4) ends the name.
            l if l & 0xC0 == 0xC0 => return Ok(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// The A records in the answer to query `id` (a CNAME chain's final
/// addresses included, as the resolver returns them); none for NXDOMAIN.
fn decode_a_records(id: u16, message: &[u8]) -> Answer {
    if u16_at(message, 0)? != id {
        return Err("an answer to another query".into());
    }
    let flags = u16_at(message, 2)?;
    let rcode = flags & 0x000F;
    if rcode == RCODE_NXDOMAIN {
        return Ok(Vec::new());
    }
    if rcode != 0 {
        return Err(format!("the resolver failed (rcode {rcode})"));
    }
    let questions = u16_at(message, 4)?;
    let answers = u16_at(message, 6)?;
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        at = skip_name(message, at)?;
        let kind = u16_at(message, at)?;
        let class = u16_at(message, at + 2)?;
        let length = usize::from(u16_at(message, at + 8)?);
        let data = message
            .get(at + 10..at + 10 + length)
            .ok_or("a truncated record")?;
        if kind == TYPE_A && class == CLASS_IN && length == 4 {
            out.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + length;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as a resolver sends it: the question, then a CNAME and
    /// an A record whose names are compression pointers.
    fn answer(id: u16) -> Vec<u8> {
        let mut out = id.to_be_bytes().to_vec();
        out.extend([0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]);
        let question = encode_query(id, "git.example.com").unwrap();
        out.extend(&question[12..]);
        // CNAME git.example.com -> (pointer to the question name).
        out.extend([0xC0, 12, 0, 5, 0, 1, 0, 0, 1, 44, 0, 2, 0xC0, 12]);
        out.extend([0xC0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 203, 0, 113, 7]);
        out
    }

    #[test]
    fn reads_a_records_through_compressed_names() {
        assert_eq!(
            decode_a_records(7, &answer(7)),
            Ok(vec![Ipv4Addr::new(203, 0, 113, 7)])
        );
        assert!(decode_a_records(8, &answer(7)).is_err(), "another query");
        let mut nxdomain = answer(7);
        nxdomain[3] = 0x83;
        assert_eq!(decode_a_records(7, &nxdomain), Ok(vec![]));
        assert!(decode_a_records(7, &answer(7)[..20]).is_err());
    }

    #[test]
    fn a_stale_answer_anywhere_means_not_yet() {
        let box_ip = Ipv4Addr::new(203, 0, 113, 7);
        let old = Ipv4Addr::new(198, 51, 100, 1);
        let one: SocketAddr = "1.1.1.1:53".parse().unwrap();
        let two: SocketAddr = "8.8.8.8:53".parse().unwrap();
        let host = "git.example.com";
        assert_eq!(
            judge(host, box_ip, &[(one, Ok(vec![box_ip])), (two, Ok(vec![]))]),
            Ok(()),
            "a negative answer still cached at one resolver does not block"
        );
        let stale = judge(
            host,
            box_ip,
            &[(one, Ok(vec![box_ip])), (two, Ok(vec![old]))],
        );
        assert_eq!(
            stale,
            Err("1.1.1.1 answers 203.0.113.7; 8.8.8.8 answers 198.51.100.1".into())
        );
        assert!(judge(host, box_ip, &[(one, Ok(vec![box_ip, old]))]).is_err());
        assert_eq!(
            judge(host, box_ip, &[(one, Err("no answer within 3s".into()))]),
            Err("1.1.1.1: no answer within 3s".into())
        );
    }
}
