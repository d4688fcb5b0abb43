//! An `http` step's URL (SPEC §7.4): `http://<service id>:<container port><path>`,
//! parsed once when the file is read. Validation reports what does not parse, planning
//! publishes the port it names, the executor sends to it; none of them parses it
//! again. Only a URL whose authority is a capture (`http://${host}/`) waits until the
//! capture is known.

use super::reader::{FromToml, Reader};
use std::fmt;
use toml::Spanned;
use toml::de::DeValue;

/// Why a URL is not one clnrm can send to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Another scheme, or none.
    #[error("expected a URL starting with http://")]
    NotHttp,
    /// The port is not a number from 1 to 65535.
    #[error("port \"{0}\" is not a port (1 to 65535)")]
    BadPort(String),
    /// No host, or user information before it.
    #[error("expected http://<service id>:<port>/path")]
    NoService,
    /// A `health_check.postgres` that is not `postgres://[user@]<service id>[:port][/database]`.
    #[error("expected postgres://[user@]<service id>[:port][/database]{0}")]
    NotPostgres(&'static str),
}

/// Where a `health_check.postgres` probe goes, and as whom.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PgTarget {
    /// The host: the service's own id.
    pub host: String,
    /// The container port (5432 when none is written).
    pub port: u16,
    /// The user the start-up message names (`postgres` when none is written).
    pub user: String,
    /// The database it names (the user's name when none is written, as libpq does).
    pub database: String,
}

/// Splits a `health_check.postgres` URL: `postgres://` (or `postgresql://`), an
/// optional user (no password: the probe never logs in), the service, an optional
/// port and an optional database; no query.
pub fn postgres_target(url: &str) -> Result<PgTarget, UrlError> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or(UrlError::NotPostgres(""))?;
    if rest.contains('?') {
        return Err(UrlError::NotPostgres(
            " (no query: the probe only asks whether the server accepts connections)",
        ));
    }
    let (authority, database) = match rest.split_once('/') {
        Some((a, d)) => (a, d),
        None => (rest, ""),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None => ("postgres", authority),
    };
    if user.contains(':') {
        return Err(UrlError::NotPostgres(
            " (no password: the probe never logs in)",
        ));
    }
    let (host, port) = host_and_port(host_port, 5432)?;
    let name_ok = |s: &str| !s.is_empty() && !s.contains(['/', '@', '%', '\0']);
    if !name_ok(host) || !name_ok(user) || database.contains(['/', '\0']) {
        return Err(UrlError::NotPostgres(""));
    }
    Ok(PgTarget {
        host: host.to_owned(),
        port,
        user: user.to_owned(),
        database: if database.is_empty() {
            user.to_owned()
        } else {
            database.to_owned()
        },
    })
}

/// Where a URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlTarget {
    /// The host: a service id of the scenario.
    pub host: String,
    /// The port (80 when none is written).
    pub port: u16,
    /// The path and query (`/` when none is written).
    pub path: String,
}

/// An `http` step's URL as written, and what it was parsed into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    text: String,
    parsed: Parsed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Parsed {
    Target(UrlTarget),
    /// The authority is a capture: parsed once it is resolved.
    Late,
    Invalid(UrlError),
}

impl HttpUrl {
    /// `text`, parsed (unless its authority is a capture).
    pub fn new(text: &str) -> Self {
        let parsed = if authority(text).is_some_and(|a| a.contains("${")) {
            Parsed::Late
        } else {
            match target(text) {
                Ok(t) => Parsed::Target(t),
                Err(e) => Parsed::Invalid(e),
            }
        };
        Self {
            text: text.to_owned(),
            parsed,
        }
    }

    /// The URL as written (captures resolved, once they are).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Where it points, when that was known as the file was read.
    pub fn target(&self) -> Option<&UrlTarget> {
        match &self.parsed {
            Parsed::Target(t) => Some(t),
            Parsed::Late | Parsed::Invalid(_) => None,
        }
    }

    /// Why it is not one clnrm can send to, when that was known as the file was read.
    pub fn error(&self) -> Option<&UrlError> {
        match &self.parsed {
            Parsed::Invalid(e) => Some(e),
            Parsed::Target(_) | Parsed::Late => None,
        }
    }

    /// Where it points, to send to it: its captures must be resolved
    /// ([`HttpUrl::substituted`]).
    pub fn resolved_target(&self) -> Result<&UrlTarget, UrlError> {
        match &self.parsed {
            Parsed::Target(t) => Ok(t),
            Parsed::Invalid(e) => Err(e.clone()),
            // An authority still holding `${`: the only way it can still be late.
            Parsed::Late => Err(UrlError::NoService),
        }
    }

    /// The URL with its text put through `resolve` (`${name}` replaced), parsed.
    pub fn substituted<E>(&self, resolve: impl Fn(&str) -> Result<String, E>) -> Result<Self, E> {
        let text = resolve(&self.text)?;
        if text == self.text {
            return Ok(self.clone());
        }
        // A capture's value is not a capture: the authority is parsed now.
        let parsed = match target(&text) {
            Ok(t) => Parsed::Target(t),
            Err(e) => Parsed::Invalid(e),
        };
        Ok(Self { text, parsed })
    }
}

/// The authority of an `http://` URL: up to its path or its query.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    Some(&rest[..rest.find(['/', '?']).unwrap_or(rest.len())])
}

/// `host[:port]`: the host, and the port (`default` when none is written; digits
/// only, 1 to 65535).
fn host_and_port(authority: &str, default: u16) -> Result<(&str, u16), UrlError> {
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Ok((authority, default));
    };
    port.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| port.parse::<u16>().ok())
        .flatten()
        .filter(|p| *p > 0)
        .map(|p| (host, p))
        .ok_or_else(|| UrlError::BadPort(port.to_owned()))
}

/// Splits an `http://` URL.
fn target(url: &str) -> Result<UrlTarget, UrlError> {
    let rest = url.strip_prefix("http://").ok_or(UrlError::NotHttp)?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = host_and_port(authority, 80)?;
    if host.is_empty() || host.contains('@') {
        return Err(UrlError::NoService);
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok(UrlTarget {
        host: host.to_owned(),
        port,
        path,
    })
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// As written: what the plan's fingerprint and the JSON plan hold.
impl serde::Serialize for HttpUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Read as a string; one that does not parse is kept, for validation to report
/// where it is written with the rest of the step.
impl FromToml for HttpUrl {
    fn from_toml(r: &mut Reader<'_>, v: &Spanned<DeValue<'_>>, path: &str) -> Option<Self> {
        String::from_toml(r, v, path).map(|text| HttpUrl::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Result<UrlTarget, UrlError> {
        let u = HttpUrl::new(url);
        match u.error() {
            Some(e) => Err(e.clone()),
            None => u.target().cloned().ok_or(UrlError::NoService),
        }
    }

    #[test]
    fn a_url_is_split_into_service_port_and_path() {
        let got = t("http://app:8080/orders?x=1").unwrap();
        assert_eq!(
            got,
            UrlTarget {
                host: "app".into(),
                port: 8080,
                path: "/orders?x=1".into()
            }
        );
        assert_eq!(t("http://app").unwrap().port, 80);
        assert_eq!(t("http://app").unwrap().path, "/");
        assert_eq!(t("http://app:81?q").unwrap().path, "/?q");
    }

    #[test]
    fn what_is_not_an_http_url_to_a_service_says_why() {
        assert_eq!(t("https://app/"), Err(UrlError::NotHttp));
        assert_eq!(t("http://app:0/"), Err(UrlError::BadPort("0".into())));
        assert_eq!(t("http://app:x/"), Err(UrlError::BadPort("x".into())));
        assert_eq!(t("http://:80/"), Err(UrlError::NoService));
        assert_eq!(t("http://u@app/"), Err(UrlError::NoService));
        assert_eq!(
            UrlError::BadPort("x".into()).to_string(),
            "port \"x\" is not a port (1 to 65535)"
        );
    }

    #[test]
    fn a_captured_authority_is_parsed_once_resolved() {
        let u = HttpUrl::new("http://${host}/a/${id}");
        assert!(u.target().is_none() && u.error().is_none());
        let r = u
            .substituted(|s| Ok::<_, ()>(s.replace("${host}", "db:5").replace("${id}", "7")))
            .unwrap();
        assert_eq!(r.as_str(), "http://db:5/a/7");
        assert_eq!(r.resolved_target().unwrap().host, "db");
        assert_eq!(r.resolved_target().unwrap().path, "/a/7");
        let bad = u
            .substituted(|s| Ok::<_, ()>(s.replace("${host}", "db:0")))
            .unwrap();
        assert_eq!(bad.resolved_target(), Err(UrlError::BadPort("0".into())));
    }

    #[test]
    fn a_capture_in_the_query_alone_leaves_the_authority_known() {
        let u = HttpUrl::new("http://app:8080?id=${id}");
        let t = u.target().expect("known as read");
        assert_eq!((t.host.as_str(), t.port), ("app", 8080));
        assert_eq!(t.path, "/?id=${id}");
        assert!(HttpUrl::new("http://${h}?x").target().is_none());
        // Not http: an error as read, whatever it holds.
        assert_eq!(
            HttpUrl::new("https://${h}/").error(),
            Some(&UrlError::NotHttp)
        );
    }

    #[test]
    fn a_postgres_url_names_the_service_port_user_and_database() {
        let pg = |host: &str, port, user: &str, database: &str| PgTarget {
            host: host.into(),
            port,
            user: user.into(),
            database: database.into(),
        };
        assert_eq!(
            postgres_target("postgres://app@db:5433/orders"),
            Ok(pg("db", 5433, "app", "orders"))
        );
        assert_eq!(
            postgres_target("postgresql://db"),
            Ok(pg("db", 5432, "postgres", "postgres"))
        );
        assert_eq!(postgres_target("postgres://u@db/").unwrap().database, "u");
        for bad in [
            "http://db:5432",
            "postgres://",
            "postgres://u:secret@db/x",
            "postgres://db/x?sslmode=require",
            "postgres://@db",
            "postgres://db/a/b",
        ] {
            let e = postgres_target(bad).unwrap_err();
            assert!(matches!(e, UrlError::NotPostgres(_)), "{bad}: {e:?}");
        }
        assert_eq!(
            postgres_target("postgres://db:0"),
            Err(UrlError::BadPort("0".into()))
        );
        assert_eq!(
            postgres_target("postgres://db:+5432"),
            Err(UrlError::BadPort("+5432".into()))
        );
        assert!(
            postgres_target("postgres://u:p@db")
                .unwrap_err()
                .to_string()
                .contains("no password")
        );
    }

    #[test]
    fn a_path_capture_keeps_the_target_known_when_read() {
        let u = HttpUrl::new("http://app:8080/orders/${id}");
        assert_eq!(u.target().unwrap().path, "/orders/${id}");
        let r = u
            .substituted(|s| Ok::<_, ()>(s.replace("${id}", "9")))
            .unwrap();
        assert_eq!(r.resolved_target().unwrap().path, "/orders/9");
    }
}
