//! Where the remote write goes: the receiver's URL as given (`user:password@` included),
//! shown without its user part and with its query masked, and the basic authorization the
//! user part gives, its password a secret from then on.

/// Where to write: the URL requests go to, the same without its user part and with its query
/// masked (shown), and the basic authorization the user part gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub url: String,
    pub(super) target: String,
    pub(super) authorization: Option<String>,
}

impl Receiver {
    /// `http[s]://[user:password@]host[:port]/path[?query]`, the user part percent-encoded as
    /// URLs have it. An error never quotes the URL: it may hold a password.
    pub fn parse(url: &str) -> Result<Receiver, String> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| {
                "expected an http:// or https:// URL (e.g. http://127.0.0.1:9090/api/v1/write)".to_string()
            })?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        // An `@` after the authority is a user part whose `/`, `?` or `#` was not encoded: the
        // rest of the password would go to another host, or be shown.
        if !authority.contains('@') && path.contains('@') {
            return Err(
                "a `/`, `?` or `#` in the URL's user part must be percent-encoded (%2F, %3F, %23), and an `@` after the host too (%40)"
                    .into(),
            );
        }
        // A fragment is never sent.
        let path = path.split('#').next().unwrap_or_default();
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let target = format!("{scheme}://{host}{path}");
        let uri: http::Uri = target
            .parse()
            .map_err(|e| format!("not a URL ({e}): expected http://host:port/path"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err("the URL has no host".into());
        }
        if uri.authority().is_some_and(|a| a.as_str().contains(':')) && uri.port_u16().is_none() {
            return Err("the URL's port is not a number from 1 to 65535".into());
        }
        let authorization = user
            .map(|user| {
                use base64::Engine as _;
                let decoded =
                    crate::units::percent::decode(user).ok_or("the URL's user part has a broken %-escape")?;
                // The password is a secret from now on: masked wherever it would be shown.
                if let Some((_, password)) = decoded.split_once(':') {
                    crate::redact::register([&password.to_string()]);
                }
                Ok::<_, String>(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(decoded)
                ))
            })
            .transpose()?;
        let shown = match target.split_once('?') {
            Some((before, _)) => format!("{before}?…"),
            None => target.clone(),
        };
        Ok(Receiver {
            url: shown,
            target,
            authorization,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_part_of_the_url_is_authorization_and_never_shown() {
        let r = Receiver::parse("https://me:s3cret@prom.example:9090/api/v1/write").unwrap();
        assert_eq!(r.url, "https://prom.example:9090/api/v1/write");
        assert_eq!(r.authorization.as_deref(), Some("Basic bWU6czNjcmV0"));
        assert_eq!(crate::redact::text("s3cret!"), "[redacted]!");
        assert!(Receiver::parse("127.0.0.1:9090").unwrap_err().contains("http://"));
        assert!(Receiver::parse("http:///x").is_err());
        assert_eq!(Receiver::parse("http://h:1").unwrap().url, "http://h:1/");
        // Escaped as URLs escape it: sent decoded.
        let r = Receiver::parse("http://me:p%40ss%2Fw@h:1/w").unwrap();
        assert_eq!(r.authorization.as_deref(), Some("Basic bWU6cEBzcy93"));
        // A `/` not escaped: refused, without quoting the URL.
        for bad in [
            "http://me:hun/ter2@h:1/w",
            "http://me:1234#ter2@h:1/w",
            "http://me:1234?ter2@h:1/w",
        ] {
            let e = Receiver::parse(bad).unwrap_err();
            assert!(e.contains("%2F") && !e.contains("ter2"), "{e}");
        }
        assert_eq!(
            Receiver::parse("http://h:1/w#frag").unwrap().target,
            "http://h:1/w"
        );
        assert!(Receiver::parse("http://me:%zz@h:1/w").is_err());
        assert!(Receiver::parse("http://h:99999/w").unwrap_err().contains("port"));
        // A query's token is sent, not shown.
        let r = Receiver::parse("http://h:1/w?token=abc").unwrap();
        assert_eq!(
            (r.url.as_str(), r.target.as_str()),
            ("http://h:1/w?…", "http://h:1/w?token=abc")
        );
    }
}
