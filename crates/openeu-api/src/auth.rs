//! Supabase user JWTs: HS256, signed with `SUPABASE_JWT_SECRET`, audience `authenticated`, with an
//! expiry. Verified here with HMAC-SHA256 (constant-time comparison) rather than a JWT crate:
//! one algorithm is all we accept, and that keeps ring and friends out of the base image.
//! base64url is the `base64` crate's strict decoder (the one postgres-protocol already
//! brings): no padding, and no non-zero leftover bits, so each token has one spelling.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
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
    /// Extensions the receiver must understand (RFC 7515 §4.1.11); we understand none.
    crit: Option<serde_json::Value>,
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
    // The scheme is case-insensitive (RFC 7235 §2.1): `Bearer`, `bearer` and `BEARER` alike.
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .ok_or(Rejection::Malformed(
            "the Authorization header must be `Bearer <token>`",
        ))?
        .1
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
    if header.crit.is_some() {
        return Err(Rejection::Malformed(
            "the JWT header names critical extensions (crit), which this API does not support",
        ));
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

/// Decodes canonical unpadded base64url: what JWTs (RFC 7515 §2) and our cursors use.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
pub mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
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
            assert_eq!(base64url_decode(&b64(input)).unwrap(), input);
        }
    }

    /// The signature with its last character's unused low bits set: the same bytes to a lenient
    /// decoder, a different token to a strict one.
    fn non_canonical(token: &str) -> String {
        let (rest, last) = token.split_at(token.len() - 1);
        // A 32-byte HMAC is 43 characters: the last carries 4 bits and 2 unused ones.
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let value = ALPHABET.find(last).unwrap();
        assert_eq!(
            value & 0b11,
            0,
            "a canonical encoding leaves the low bits clear"
        );
        format!("{rest}{}", &ALPHABET[value + 1..value + 2])
    }

    #[test]
    fn only_canonical_base64url_is_accepted() {
        let token = sign(HS256, GOOD, SECRET);
        assert_eq!(check(&token), Ok("a1b2".to_owned()));
        assert!(matches!(
            check(&non_canonical(&token)),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            check(&format!("{token}=")),
            Err(Rejection::Malformed(_))
        ));
        assert!(base64url_decode("Zm9v").is_some());
        assert!(base64url_decode("Zm9=").is_none());
        assert!(base64url_decode("Zm8").is_some());
        assert!(base64url_decode("Zm9").is_none(), "leftover bits set");
    }

    #[test]
    fn critical_extensions_are_refused() {
        let crit = sign(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#, GOOD, SECRET);
        assert!(matches!(check(&crit), Err(Rejection::Malformed(_))));
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let token = sign(HS256, GOOD, SECRET);
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                verify(Some(&format!("{scheme} {token}")), SECRET, NOW),
                Ok("a1b2".to_owned()),
                "{scheme}"
            );
        }
        assert!(verify(Some(&format!("Bearer{token}")), SECRET, NOW).is_err());
        assert!(verify(Some(&format!("Basic {token}")), SECRET, NOW).is_err());
    }
}
