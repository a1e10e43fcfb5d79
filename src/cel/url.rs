//! URLs (`url('https://example.com:8443/path?x=1')`), accepted as Go's
//! `url.ParseRequestURI` accepts them: an absolute URL or an absolute path.

use std::any::Any;
use std::sync::LazyLock;

use cel::ExecutionError;
use cel::common::types::Type;
use cel::common::value::{StaticVal, Val};

pub static URL_TYPE: LazyLock<Type> = LazyLock::new(|| Type::new_opaque_type("kubernetes.URL"));

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: String,
    /// Host and port as written (`[::1]:80`).
    pub host: String,
    pub path: String,
    pub query: String,
}

impl Val for Url {
    fn get_type(&self) -> &Type {
        &URL_TYPE
    }
    fn cel_type() -> &'static Type {
        &URL_TYPE
    }
    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Url>() == Some(self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}
impl StaticVal for Url {}

impl Url {
    pub fn parse(text: &str) -> Result<Url, ExecutionError> {
        let invalid =
            || ExecutionError::function_error("url", format!("URL '{text}' is not valid"));
        if text.is_empty() || text.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid());
        }
        let (rest, query) = text.split_once('?').unwrap_or((text, ""));
        if rest.starts_with('/') {
            return Ok(Url {
                scheme: String::new(),
                host: String::new(),
                path: rest.to_owned(),
                query: query.to_owned(),
            });
        }
        let (scheme, after) = rest.split_once(':').ok_or_else(invalid)?;
        let valid_scheme = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err(invalid());
        }
        let (host, path) = match after.strip_prefix("//") {
            Some(authority_and_path) => {
                let end = authority_and_path
                    .find('/')
                    .unwrap_or(authority_and_path.len());
                let (authority, path) = authority_and_path.split_at(end);
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                if !valid_host(host) {
                    return Err(invalid());
                }
                (host.to_owned(), path.to_owned())
            }
            None if after.starts_with('/') => (String::new(), after.to_owned()),
            // An opaque URL (`mailto:a@b`) has neither host nor path.
            None => (String::new(), String::new()),
        };
        Ok(Url {
            scheme: scheme.to_owned(),
            host,
            path,
            query: query.to_owned(),
        })
    }

    pub fn hostname(&self) -> &str {
        if let Some(inner) = self.host.strip_prefix('[') {
            return inner.split(']').next().unwrap_or("");
        }
        self.host.split(':').next().unwrap_or("")
    }

    pub fn port(&self) -> &str {
        let after_host = match self.host.strip_prefix('[') {
            Some(inner) => inner.split_once(']').map_or("", |(_, rest)| rest),
            None => self.host.split_once(':').map_or("", |(_, port)| port),
        };
        after_host.strip_prefix(':').unwrap_or(after_host)
    }

    /// The query as `key: [values]`, percent-decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split(['&', ';'])
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        let Some((address, port)) = inner.split_once(']') else {
            return false;
        };
        return address.parse::<std::net::Ipv6Addr>().is_ok()
            && (port.is_empty() || valid_port(port.strip_prefix(':').unwrap_or("x")));
    }
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%'))
        && (!host.contains(':') || valid_port(port))
}

fn valid_port(port: &str) -> bool {
    port.bytes().all(|b| b.is_ascii_digit())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                Some(Ok(b)) => {
                    out.push(b);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_url() {
        let u = Url::parse("https://user@example.com:8443/a/b?x=1&y=a%20b").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "example.com:8443");
        assert_eq!(u.hostname(), "example.com");
        assert_eq!(u.port(), "8443");
        assert_eq!(u.path, "/a/b");
        assert_eq!(
            u.query_pairs(),
            [("x".into(), "1".into()), ("y".into(), "a b".into())]
        );
        let v6 = Url::parse("http://[::1]:80/").unwrap();
        assert_eq!((v6.hostname(), v6.port()), ("::1", "80"));
        assert_eq!(Url::parse("/absolute").unwrap().scheme, "");
    }

    #[test]
    fn relative_or_malformed_urls_are_errors() {
        for bad in ["../relative", "example.com", "", "http://a b/", "1http://x"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
