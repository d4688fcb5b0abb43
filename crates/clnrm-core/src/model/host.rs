//! An `allow_hosts` entry of `[expect.hermeticity]`: a host name, an address, or a
//! CIDR range of addresses (`"10.0.0.0/8"`, `"fd00::/8"`). Anything else is refused
//! by `validate` where it is written.

use std::net::IpAddr;

/// One allowed host or range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// A host name, compared without case.
    Name(String),
    /// One address.
    Addr(IpAddr),
    /// Every address whose first `bits` bits are `net`'s.
    Range {
        /// The network's address.
        net: IpAddr,
        /// The prefix length.
        bits: u8,
    },
}

/// Why a text is no `allow_hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// A URL where a host belongs.
    #[error("\"{text}\" is a {scheme} URL; write its host (\"{host}\")")]
    Url {
        /// The entry as written.
        text: String,
        /// The URL's scheme.
        scheme: String,
        /// The URL's host, to write instead.
        host: String,
    },
    /// A range whose network is not an address.
    #[error("\"{0}\" before the `/` is not an IP address")]
    RangeAddress(String),
    /// A range whose prefix length is not a number the address has bits for.
    #[error("\"{bits}\" is not a prefix length from 0 to {max}")]
    PrefixLength {
        /// The prefix length as written.
        bits: String,
        /// The address's bits (32 or 128).
        max: u8,
    },
    /// A mistyped address: a name's last part is never a number.
    #[error("\"{0}\" is not an IP address (nor a host name: its last part is a number)")]
    NumericName(String),
    /// None of the three forms.
    #[error("\"{0}\" is not a host name, an IP address or a CIDR range")]
    Invalid(String),
}

impl HostPattern {
    /// Reads `text`; `Err` says why it is none of the three forms.
    pub fn parse(text: &str) -> Result<Self, HostError> {
        if let Some((scheme, rest)) = text.split_once("://") {
            let host = rest.split(['/', ':']).next().unwrap_or(rest);
            return Err(HostError::Url {
                text: text.to_owned(),
                scheme: scheme.to_owned(),
                host: host.to_owned(),
            });
        }
        if let Some((addr, bits)) = text.split_once('/') {
            let net: IpAddr = addr
                .parse()
                .map_err(|_| HostError::RangeAddress(addr.to_owned()))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let bits: u8 =
                bits.parse()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| HostError::PrefixLength {
                        bits: bits.to_owned(),
                        max,
                    })?;
            return Ok(Self::Range { net, bits });
        }
        if let Ok(a) = text.parse::<IpAddr>() {
            return Ok(Self::Addr(a));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        // A name's last label is never all digits (no top-level domain is): such a
        // text is a mistyped address (`256.1.1.1`, `10.0.0`).
        let last = text.rsplit('.').next().unwrap_or(text);
        if !last.is_empty() && last.chars().all(|c| c.is_ascii_digit()) {
            return Err(HostError::NumericName(text.to_owned()));
        }
        if text.len() <= 253 && text.split('.').all(label_ok) {
            return Ok(Self::Name(text.to_ascii_lowercase()));
        }
        Err(HostError::Invalid(text.to_owned()))
    }

    /// Whether `host` (a name or an address, as a span carries it) is allowed.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Name(n) => n.eq_ignore_ascii_case(host),
            Self::Addr(a) => same_host(host, &a.to_string()),
            Self::Range { net, bits } => host
                .parse::<IpAddr>()
                .is_ok_and(|h| in_range(h, *net, *bits)),
        }
    }
}

/// Whether `a` and `b` name the same host: equal names without case, or the same
/// address however written (`::ffff:10.0.0.1` is `10.0.0.1`, `fd00::0001` is `fd00::1`).
pub fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.to_canonical() == y.to_canonical(),
        (Err(_), Err(_)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

fn in_range(host: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (h, n, width) = match (host, net) {
        (IpAddr::V4(h), IpAddr::V4(n)) => (u128::from(u32::from(h)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(h), IpAddr::V6(n)) => (u128::from(h), u128::from(n), 128),
        // An IPv4 address written as IPv6 (::ffff:a.b.c.d) against an IPv4 range.
        (IpAddr::V6(h), IpAddr::V4(n)) => match h.to_ipv4_mapped() {
            Some(h4) => (u128::from(u32::from(h4)), u128::from(u32::from(n)), 32),
            None => return false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (h >> shift) == (n >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_ranges_match_what_they_say() {
        let range = HostPattern::parse("192.168.0.0/16").expect("range");
        assert!(range.matches("192.168.128.1"));
        assert!(!range.matches("192.169.0.1"));
        assert!(!range.matches("orders.example"));
        assert!(
            HostPattern::parse("0.0.0.0/0")
                .expect("all")
                .matches("8.8.8.8")
        );
        assert!(
            HostPattern::parse("fd00::/8")
                .expect("v6")
                .matches("fd12::1")
        );
        assert!(
            HostPattern::parse("10.0.0.0/8")
                .expect("v4")
                .matches("::ffff:10.1.2.3")
        );
        assert!(
            HostPattern::parse("10.1.2.3")
                .expect("addr")
                .matches("10.1.2.3")
        );
        assert!(
            HostPattern::parse("Orders.Example")
                .expect("name")
                .matches("orders.example")
        );
        assert!(
            HostPattern::parse("10.1.2.3")
                .expect("addr")
                .matches("::ffff:10.1.2.3")
        );
        assert!(
            HostPattern::parse("fd00::1")
                .expect("v6 addr")
                .matches("fd00:0::0001")
        );
        assert!(same_host("::ffff:172.18.0.1", "172.18.0.1"));
        assert!(!same_host("172.18.0.1", "172.18.0.10"));
        assert!(HostPattern::parse("host-1.example").is_ok());
        assert!(HostPattern::parse("1password.com").is_ok());
        for bad in [
            "256.1.1.1",
            "10.0.0",
            "1.2.3.4.5",
            "192.168.0.0/33",
            "10.0.0/8",
            "x/8",
            "a b",
            "",
            "-x.com",
            "http://a",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
    #[test]
    fn each_refusal_says_why() {
        let why = |text: &str| HostPattern::parse(text).unwrap_err().to_string();
        assert_eq!(
            why("http://a:80/x"),
            "\"http://a:80/x\" is a http URL; write its host (\"a\")"
        );
        assert_eq!(why("x/8"), "\"x\" before the `/` is not an IP address");
        assert_eq!(
            why("10.0.0.0/33"),
            "\"33\" is not a prefix length from 0 to 32"
        );
        assert_eq!(
            why("10.0.0"),
            "\"10.0.0\" is not an IP address (nor a host name: its last part is a number)"
        );
        assert_eq!(
            why("a b"),
            "\"a b\" is not a host name, an IP address or a CIDR range"
        );
    }
}
