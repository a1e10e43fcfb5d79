//! Values that are credentials by their shape, whatever they are called:
//! AWS access key ids, PEM private keys, JSON Web Tokens, passwords written
//! into URLs; and the same shapes hidden under one layer of base64.
//!
//! The functions here only say *what* a value holds; no caller ever copies
//! the value into a finding.

/// What a credential-shaped value holds, for messages: "holds {shape}".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    AwsAccessKeyId,
    PrivateKey,
    JsonWebToken,
    UrlPassword,
}

impl Shape {
    pub fn describe(self) -> &'static str {
        match self {
            Shape::AwsAccessKeyId => "an AWS access key id",
            Shape::PrivateKey => "a PEM private key",
            Shape::JsonWebToken => "a JSON Web Token",
            Shape::UrlPassword => "a password in a URL",
        }
    }
}

/// The credential a value holds, and whether it was found only after base64
/// decoding the whole value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub shape: Shape,
    pub base64: bool,
}

impl Found {
    /// "a PEM private key", "a base64-encoded JSON Web Token".
    pub fn describe(self) -> String {
        let what = self.shape.describe();
        match (self.base64, what.split_once(' ')) {
            (true, Some((_, rest))) => format!("a base64-encoded {rest}"),
            _ => what.to_owned(),
        }
    }
}

/// The first credential shape found in `value`, as written or once base64
/// decoded: the whole value, or one of its words (a kubeconfig's
/// `client-key-data: <base64 PEM key>` inside a file).
pub fn credential_in(value: &str) -> Option<Found> {
    if let Some(shape) = shape_of(value) {
        return Some(Found {
            shape,
            base64: false,
        });
    }
    let words =
        value.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ':' | ',' | ';'));
    std::iter::once(value.trim())
        .chain(words)
        .find_map(decoded_shape)
        .map(|shape| Found {
            shape,
            base64: true,
        })
}

/// The credential shape of `word` once base64 decoded, if it is base64 of text.
fn decoded_shape(word: &str) -> Option<Shape> {
    let decoded = decode_base64(word)?;
    let text = String::from_utf8(decoded).ok()?;
    shape_of(&text)
}

/// The credential shape `text` contains, checked in a fixed order.
pub fn shape_of(text: &str) -> Option<Shape> {
    if holds_private_key(text) {
        Some(Shape::PrivateKey)
    } else if holds_aws_access_key_id(text) {
        Some(Shape::AwsAccessKeyId)
    } else if holds_jwt(text) {
        Some(Shape::JsonWebToken)
    } else if holds_url_password(text) {
        Some(Shape::UrlPassword)
    } else {
        None
    }
}

/// A PEM private key block (`-----BEGIN RSA PRIVATE KEY-----` and variants).
pub fn holds_private_key(value: &str) -> bool {
    // Most values have no dash at all: skip the upper-case copy for them.
    if !value.contains("-") {
        return false;
    }
    let upper = value.to_ascii_uppercase();
    upper
        .find("-BEGIN")
        .is_some_and(|begin| upper[begin..].contains("PRIVATE KEY-"))
}

/// AWS access key ids: a four-character prefix (`AKIA` long-term, `ASIA`
/// temporary, `ABIA`, `ACCA`, `A3T` + one character) and 16 characters of
/// base32 (`A-Z`, `2-7`), standing alone. The documented example key id
/// `AKIAIOSFODNN7EXAMPLE` counts: a scanner cannot know it is not real.
pub fn holds_aws_access_key_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|start| {
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        before_ok && aws_key_at(&bytes[start..])
    })
}

fn aws_key_at(bytes: &[u8]) -> bool {
    let a3t = bytes.starts_with(b"A3T") && bytes.get(3).is_some_and(u8::is_ascii_alphanumeric);
    let known = [&b"AKIA"[..], b"ASIA", b"ABIA", b"ACCA"]
        .iter()
        .any(|p| bytes.starts_with(p));
    if !(a3t || known) {
        return false;
    }
    // Every prefix is four characters long.
    let end = 4 + 16;
    bytes.len() >= end
        && bytes[4..end]
            .iter()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(b))
        && bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric())
}

/// A signed JSON Web Token: three base64url segments separated by dots, the
/// first two JSON objects (`eyJ` is the encoding of `{"`), the signature
/// long enough to be one.
pub fn holds_jwt(text: &str) -> bool {
    text.contains("eyJ")
        && text
            .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .any(|token| {
                let parts: Vec<&str> = token.split('.').collect();
                parts.len() == 3
                    && parts[0].starts_with("eyJ")
                    && parts[1].starts_with("eyJ")
                    && parts[0].len() >= 10
                    && parts[1].len() >= 10
                    && parts[2].len() >= 16
            })
}

/// A URL with a password in its user info: `scheme://user:password@host`,
/// where the password is not a placeholder (`$(VAR)`, `${VAR}`,
/// `{{ .Values.x }}`, `<password>`, `****`).
pub fn holds_url_password(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_ok = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        let after = &rest[at + 3..];
        let authority_end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        if scheme_ok
            && let Some((user_info, _host)) = authority.rsplit_once('@')
            && let Some((_user, password)) = user_info.split_once(':')
            && !password.is_empty()
            && !is_placeholder_password(password)
        {
            return true;
        }
        rest = after;
    }
    false
}

fn is_placeholder_password(password: &str) -> bool {
    let templated = ["$(", "${", "{{", "%s", "%("]
        .iter()
        .any(|t| password.contains(t));
    let bracketed = password.starts_with('<') && password.ends_with('>');
    let masked = password.chars().all(|c| c == '*' || c == 'x' || c == 'X');
    templated || bracketed || masked
}

/// Decodes `value` when all of it is base64 (standard or URL-safe alphabet,
/// padded or not) and at least 16 characters long: shorter strings are
/// too often ordinary words that happen to decode.
pub fn decode_base64(value: &str) -> Option<Vec<u8>> {
    let trimmed = value.trim_end_matches('=');
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
    if value.len() < 16 || value.len() - trimmed.len() > 2 || !trimmed.bytes().all(alphabet) {
        return None;
    }
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for byte in trimmed.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(sextet);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    // A single leftover character (6 bits) cannot end valid base64.
    (count < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        while !out.len().is_multiple_of(4) {
            out.push('=');
        }
        out
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

    #[test]
    fn shapes() {
        assert_eq!(
            shape_of("AKIAIOSFODNN7EXAMPLE"),
            Some(Shape::AwsAccessKeyId)
        );
        assert_eq!(
            shape_of("key=ASIAY34FZKBOKMUTVV7A;"),
            Some(Shape::AwsAccessKeyId)
        );
        assert_eq!(shape_of(JWT), Some(Shape::JsonWebToken));
        assert_eq!(
            shape_of(&format!("Bearer {JWT}")),
            Some(Shape::JsonWebToken)
        );
        assert_eq!(
            shape_of("postgres://app:s3cr3t@db:5432/app"),
            Some(Shape::UrlPassword)
        );
        assert_eq!(
            shape_of(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"
            ),
            Some(Shape::PrivateKey)
        );
        for harmless in [
            "AKIAIOSFODNN7EXAMPLEX",
            "XAKIAIOSFODNN7EXAMPLE",
            "akiaiosfodnn7example",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
            "https://example.com/path?x=1",
            "https://user@example.com",
            "postgres://app:$(DB_PASSWORD)@db/app",
            "postgres://app:${DB_PASSWORD}@db/app",
            "redis://:{{ .Values.password }}@redis:6379",
            "mysql://root:<password>@db",
            "amqp://guest:****@rabbit",
            "-----BEGIN CERTIFICATE-----",
            "hello world",
        ] {
            assert_eq!(shape_of(harmless), None, "{harmless}");
        }
    }

    #[test]
    fn base64_layer() {
        let encoded = b64("postgres://app:s3cr3t@db:5432/app");
        assert_eq!(
            credential_in(&encoded),
            Some(Found {
                shape: Shape::UrlPassword,
                base64: true
            })
        );
        assert_eq!(
            credential_in(&encoded).unwrap().describe(),
            "a base64-encoded password in a URL"
        );
        assert_eq!(
            credential_in(&b64("AKIAIOSFODNN7EXAMPLE")).unwrap().shape,
            Shape::AwsAccessKeyId
        );
        assert_eq!(credential_in(&b64("just some configuration text")), None);
        let kubeconfig = format!(
            "users:\n- name: admin\n  user:\n    client-key-data: {}\n",
            b64("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n")
        );
        assert_eq!(
            credential_in(&kubeconfig),
            Some(Found {
                shape: Shape::PrivateKey,
                base64: true
            })
        );
        let certificate = format!(
            "certificate-authority-data: {}",
            b64("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        );
        assert_eq!(credential_in(&certificate), None);
        assert_eq!(credential_in("bm90IGEgc2VjcmV0"), None);
        assert_eq!(
            decode_base64(&b64("sixteen chars!!!")).unwrap(),
            b"sixteen chars!!!"
        );
        assert_eq!(decode_base64("not base64 at all, spaces"), None);
    }
}
