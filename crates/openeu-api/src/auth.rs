//! Supabase user JWTs: HS256, signed with `SUPABASE_JWT_SECRET`, audience `authenticated`, with an
//! expiry. Verified here with HMAC-SHA256 (constant-time comparison) rather than a JWT crate:
//! one algorithm is all we accept, and that keeps ring and friends out of the base image.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Why a token was refused; the text is safe to show to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Malformed(&'static str),
    Algorithm,
    Signature,
    Expired,
    Audience,
}

impl Rejection {
    pub fn detail(&self) -> &'static str {
        match self {
            Rejection::Missing => "an Authorization: Bearer <token> header is required",
            Rejection::Malformed(why) => why,
            Rejection::Algorithm => "the token must be signed with HS256",
            Rejection::Signature => "the token's signature is invalid",
            Rejection::Expired => "the token has expired",
            Rejection::Audience => "the token's audience must be `authenticated`",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    aud: Option<serde_json::Value>,
}

/// The verified user id (the `sub` claim).
pub fn verify(
    authorization: Option<&str>,
    secret: &[u8],
    now_secs: u64,
) -> Result<String, Rejection> {
    let header = authorization.ok_or(Rejection::Missing)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(Rejection::Malformed(
            "the Authorization header must be `Bearer <token>`",
        ))?
        .trim();
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed("a JWT has three dot-separated parts"));
    };
    let header: Header = serde_json::from_slice(
        &base64url_decode(h).ok_or(Rejection::Malformed("the JWT header is not base64url"))?,
    )
    .map_err(|_| Rejection::Malformed("the JWT header is not JSON"))?;
    // Only HS256: this refuses `none`, HS384/HS512 and every asymmetric algorithm.
    if header.alg != "HS256" {
        return Err(Rejection::Algorithm);
    }
    let signature =
        base64url_decode(s).ok_or(Rejection::Malformed("the JWT signature is not base64url"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Rejection::Signature)?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| Rejection::Signature)?;
    let claims: Claims = serde_json::from_slice(
        &base64url_decode(p).ok_or(Rejection::Malformed("the JWT payload is not base64url"))?,
    )
    .map_err(|_| Rejection::Malformed("the JWT payload is not a JSON object of claims"))?;
    let now = now_secs as f64;
    match claims.exp {
        Some(exp) if exp > now => {}
        Some(_) => return Err(Rejection::Expired),
        None => return Err(Rejection::Malformed("the token has no exp claim")),
    }
    if claims.nbf.is_some_and(|nbf| nbf > now) {
        return Err(Rejection::Malformed("the token is not valid yet (nbf)"));
    }
    let audience_ok = match &claims.aud {
        Some(serde_json::Value::String(aud)) => aud == "authenticated",
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a == "authenticated"),
        _ => false,
    };
    if !audience_ok {
        return Err(Rejection::Audience);
    }
    claims
        .sub
        .filter(|s| !s.is_empty())
        .ok_or(Rejection::Malformed("the token has no sub claim"))
}

/// Decodes unpadded (or padded) base64url.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Unpadded base64url.
    fn base64url_encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            }
        }
        out
    }

    fn b64(bytes: &[u8]) -> String {
        base64url_encode(bytes)
    }

    pub fn sign(header: &str, claims: &str, secret: &[u8]) -> String {
        let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
    }

    const NOW: u64 = 1_800_000_000;
    const SECRET: &[u8] = b"test-secret";
    const GOOD: &str =
        r#"{"sub":"a1b2","aud":"authenticated","exp":1800000600,"role":"authenticated"}"#;
    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    fn check(token: &str) -> Result<String, Rejection> {
        verify(Some(&format!("Bearer {token}")), SECRET, NOW)
    }

    #[test]
    fn the_auth_matrix() {
        assert_eq!(check(&sign(HS256, GOOD, SECRET)), Ok("a1b2".to_owned()));
        assert_eq!(
            check(&sign(HS256, GOOD, b"wrong")),
            Err(Rejection::Signature)
        );
        assert_eq!(
            check(&sign(r#"{"alg":"HS512"}"#, GOOD, SECRET)),
            Err(Rejection::Algorithm)
        );
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(GOOD.as_bytes()));
        assert_eq!(check(&none), Err(Rejection::Algorithm));
        let expired = GOOD.replace("1800000600", "1799999999");
        assert_eq!(
            check(&sign(HS256, &expired, SECRET)),
            Err(Rejection::Expired)
        );
        let anon = GOOD.replace("\"authenticated\",\"exp\"", "\"anon\",\"exp\"");
        assert_eq!(check(&sign(HS256, &anon, SECRET)), Err(Rejection::Audience));
        assert!(matches!(check("abc.def"), Err(Rejection::Malformed(_))));
        assert!(matches!(check("!!.??.**"), Err(Rejection::Malformed(_))));
        assert_eq!(verify(None, SECRET, NOW), Err(Rejection::Missing));
        assert!(matches!(
            verify(Some("Basic abc"), SECRET, NOW),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn base64url_round_trips() {
        for input in [&b""[..], b"f", b"fo", b"foo", b"\xff\xfe\xfd\x00"] {
            assert_eq!(base64url_decode(&base64url_encode(input)).unwrap(), input);
        }
    }
}
