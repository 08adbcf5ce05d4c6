//! Secrets kept out of everything printed or recorded. One function, [`text`], is applied
//! wherever text from a server or from the user reaches stderr or a record: it masks the
//! secrets this run knows ([`register`]: the API token's secret, as given, percent-encoded
//! and percent-decoded), and whatever looks like one: the secret of a
//! `PVEAPIToken=USER@REALM!ID=SECRET` (a server or proxy may echo the `Authorization`
//! header), a `PVEAuthCookie=` ticket, an `Authorization: Basic|Bearer` credential, and the
//! password of a URL's `user:password@`.

use std::sync::Mutex;

/// What a secret is replaced with.
pub const MASK: &str = "<redacted>";

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Secrets shorter than this are not searched for (they would mask ordinary words); the
/// patterns still catch them in an `Authorization` value.
const MIN_SECRET: usize = 4;

/// From now on `secret` is masked in every [`text`].
pub fn register(secret: &str) {
    let mut s = match SECRETS.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    for form in [secret.to_string(), encode(secret), decode(secret)] {
        if form.len() >= MIN_SECRET && !s.contains(&form) {
            s.push(form);
        }
    }
}

/// `s` with every known secret and every credential-shaped value masked.
pub fn text(s: &str) -> String {
    let mut out = s.to_string();
    let known = match SECRETS.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    for k in &known {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), MASK);
        }
    }
    for (marker, from) in [
        ("pveapitoken=", Start::AfterTokenId),
        ("pveauthcookie=", Start::Here),
        ("authorization: basic ", Start::Here),
        ("authorization: bearer ", Start::Here),
    ] {
        out = mask_after(&out, marker, from);
    }
    url_passwords(&out)
}

/// Where the secret begins after a marker.
#[derive(Clone, Copy)]
enum Start {
    Here,
    /// After the `=` that follows the token id's `!` (else its first `=`).
    AfterTokenId,
}

/// Bytes that end a credential in text (a header line, JSON, a message).
fn ends(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b',' | b';' | b')' | b']' | b'}' | b'>')
}

/// Masks the credential after each (ASCII case-insensitive) `marker`.
fn mask_after(s: &str, marker: &str, from: Start) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(i) = lower[pos..].find(marker) {
        let start = pos + i + marker.len();
        let end = s[start..]
            .bytes()
            .position(ends)
            .map_or(s.len(), |n| start + n);
        let word = &s[start..end];
        let secret_at = match from {
            Start::Here => Some(0),
            Start::AfterTokenId => {
                let bang = word.find('!').unwrap_or(0);
                word[bang..].find('=').map(|e| bang + e + 1)
            }
        };
        out.push_str(&s[pos..start]);
        match secret_at {
            Some(at) if at < word.len() => {
                out.push_str(&word[..at]);
                out.push_str(MASK);
            }
            _ => out.push_str(word),
        }
        pos = end;
    }
    out.push_str(&s[pos..]);
    out
}

/// `scheme://user:password@host` → `scheme://user:<redacted>@host`.
fn url_passwords(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(i) = s[pos..].find("://") {
        let start = pos + i + 3;
        let end = s[start..]
            .bytes()
            .position(|c| ends(c) || c == b'/' || c == b'?' || c == b'#')
            .map_or(s.len(), |n| start + n);
        let authority = &s[start..end];
        out.push_str(&s[pos..start]);
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        pos = end;
    }
    out.push_str(&s[pos..]);
    out
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Percent-decodes what decodes; the rest is kept.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_text_are_masked() {
        let t = text("401 bad PVEAPIToken=a@b@pve!x=0123-4567-89ab, again");
        assert_eq!(t, "401 bad PVEAPIToken=a@b@pve!x=<redacted>, again");
        assert_eq!(
            text("{\"authorization\": \"pveapitoken=root@pam!t=s3cr=t\"}"),
            "{\"authorization\": \"pveapitoken=root@pam!t=<redacted>\"}"
        );
        assert_eq!(
            text("Authorization: Basic dXNlcjpw"),
            "Authorization: Basic <redacted>"
        );
        assert_eq!(
            text("--api 'https://me:p%40ss@pve1:8006/x' and http://host/a:b@c"),
            "--api 'https://me:<redacted>@pve1:8006/x' and http://host/a:b@c"
        );
        assert_eq!(text("PVEAPIToken=root@pam!t"), "PVEAPIToken=root@pam!t");
    }

    #[test]
    fn registered_secrets_are_masked_in_every_form() {
        register("x/y z+secret");
        assert_eq!(text("a x/y z+secret b"), "a <redacted> b");
        assert_eq!(text("a x%2Fy%20z%2Bsecret b"), "a <redacted> b");
        register("p%40ss-word");
        assert_eq!(text("p@ss-word"), "<redacted>");
    }
}
