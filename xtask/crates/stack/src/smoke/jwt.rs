//! The tokens of smoke.toml's auth modes, made as Supabase makes a user's JWT: HS256 over
//! base64url JSON, `aud` = `authenticated`, `sub` = the seeded user. HMAC-SHA256 (RFC 2104) is
//! a dozen lines over sha2, which xtask already has, so no JWT or HMAC crate is added.

use sha2::{Digest, Sha256};
use xtask_core::encoding::base64url;

/// How a check authenticates, spelled in smoke.toml in kebab case (`wrong-signature`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// No Authorization header.
    #[default]
    None,
    /// A valid token for the seeded user, signed with the stack's secret.
    Valid,
    /// A token whose `exp` has passed.
    Expired,
    /// A token signed with another secret.
    WrongSignature,
    /// An unsigned token (`alg: none`), which must be refused.
    AlgNone,
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A Supabase user's JWT claims, in the order (alphabetical) the tokens have always had them.
#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'static str,
    exp: u64,
    iat: u64,
    role: &'static str,
    sub: &'a str,
}

/// The Authorization header value for `auth` (None for `Auth::None`).
pub fn authorization(auth: Auth, secret: &[u8], user: &str, now: u64) -> Option<String> {
    let claims = |exp: u64| {
        serde_json::to_string(&Claims {
            aud: "authenticated",
            exp,
            iat: now,
            role: "authenticated",
            sub: user,
        })
        .expect("claims serialize")
    };
    let token = match auth {
        Auth::None => return None,
        Auth::Valid => sign(r#"{"alg":"HS256","typ":"JWT"}"#, &claims(now + 600), secret),
        Auth::Expired => sign(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &claims(now.saturating_sub(600)),
            secret,
        ),
        Auth::WrongSignature => sign(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &claims(now + 600),
            b"not-the-stack-secret",
        ),
        Auth::AlgNone => format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT"}"#),
            base64url(claims(now + 600).as_bytes())
        ),
    };
    Some(format!("Bearer {token}"))
}

fn sign(header: &str, claims: &str, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        base64url(header.as_bytes()),
        base64url(claims.as_bytes())
    );
    let signature = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", base64url(&signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            xtask_core::files::hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            xtask_core::files::hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn tokens_have_three_parts_and_none_is_unsigned() {
        let valid = authorization(Auth::Valid, b"s", "u", 1000).unwrap();
        assert_eq!(valid.trim_start_matches("Bearer ").split('.').count(), 3);
        let none = authorization(Auth::AlgNone, b"s", "u", 1000).unwrap();
        assert!(none.ends_with('.'));
        assert_eq!(authorization(Auth::None, b"s", "u", 1000), None);
    }
}
