//! The one guard on where load goes: only loopback addresses (127.0.0.0/8 and ::1) pass, so a
//! mistyped `--addr` can never send load to another machine.

use std::fmt;
use std::net::SocketAddr;

/// An address that is not on this machine's loopback interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLoopback(pub SocketAddr);

impl fmt::Display for NotLoopback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not a loopback address: the load test only targets this machine \
             (127.0.0.0/8 or [::1], e.g. 127.0.0.1:8080)",
            self.0
        )
    }
}

impl std::error::Error for NotLoopback {}

/// `addr` itself when it is a loopback address (127.0.0.0/8 or ::1), otherwise an error naming
/// it. IPv4-mapped IPv6 forms such as `[::ffff:127.0.0.1]` are refused too: only the two plain
/// spellings are accepted, so that the rule is easy to state.
pub fn require_loopback(addr: SocketAddr) -> Result<SocketAddr, NotLoopback> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(NotLoopback(addr))
    }
}

/// Parses a `--addr` value: a socket address (`IP:PORT`, `[IPv6]:PORT`) on loopback. Host names
/// are not resolved, so nothing outside this machine is consulted.
pub fn parse_loopback(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not IP:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"))?;
    require_loopback(addr).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_pass() {
        for text in ["127.0.0.1:8080", "127.255.1.2:1", "[::1]:80"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(require_loopback(addr), Ok(addr), "{text}");
            assert_eq!(parse_loopback(text), Ok(addr));
        }
    }

    #[test]
    fn other_addresses_are_refused_with_a_clear_message() {
        for text in [
            "10.0.0.1:8080",
            "192.168.1.10:80",
            "0.0.0.0:8080",
            "8.8.8.8:53",
            "[::]:80",
            "[::ffff:127.0.0.1]:80",
            "[2001:db8::1]:80",
        ] {
            let message = parse_loopback(text).unwrap_err();
            assert!(message.contains("is not a loopback address"), "{message}");
        }
    }

    #[test]
    fn host_names_are_not_resolved() {
        let message = parse_loopback("localhost:8080").unwrap_err();
        assert!(message.contains("is not IP:PORT"), "{message}");
    }
}
