//! Bytes as text: base64, the two alphabets xtask writes (standard with padding for Basic
//! authentication, RFC 7617; URL-safe without padding for JWTs, RFC 7515), through the `base64`
//! crate's engines; percent-encoding of query values (a dozen lines, so no crate). Percent-decoding of URL parts
//! is `openeu_env::percent_decode` (the service decodes its own `DATABASE_URL` with it, so the
//! workspace keeps one copy there).

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};

/// Percent-encodes every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`), so
/// the result is safe as a query value or a path segment: timestamps' `+` and `:`, base64's
/// `/`, `+` and `=`, an image reference's `@`, and UTF-8 byte by byte.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Standard base64 (RFC 4648 §4, with padding), as Basic authentication and docker's
/// config.json `auth` use.
pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use openeu_env::percent_decode;

    use super::*;

    #[test]
    fn standard_base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        // A Basic credential.
        assert_eq!(base64(b"ci:pw"), "Y2k6cHc=");
    }

    #[test]
    fn base64url_has_no_padding_and_the_url_safe_alphabet() {
        // 0xfb 0xff encodes to `+/8=` in the standard alphabet.
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(
            base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        );
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            percent_encode("2026-11-28T10:00:00+01:00"),
            "2026-11-28T10%3A00%3A00%2B01%3A00"
        );
        assert_eq!(percent_encode("ab/c+d=="), "ab%2Fc%2Bd%3D%3D");
        assert_eq!(
            percent_encode("x'; drop table--"),
            "x%27%3B%20drop%20table--"
        );
        assert_eq!(percent_encode("café"), "caf%C3%A9");
        for text in ["127.0.0.1:5000/app@sha256:ab", "a b%c&d=e?f#g", "é/ü", ""] {
            assert_eq!(percent_decode(&percent_encode(text)), text);
        }
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("p%40ss%2Fw%3A%25"), "p@ss/w:%");
        // Not hex, cut short, or a lone `%` at the end: kept as they are.
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%%41"), "%A");
        // An escape next to a multi-byte character never splits it.
        assert_eq!(percent_decode("%aé%é"), "%aé%é");
        // `+` is not a space outside a form body.
        assert_eq!(percent_decode("a+b"), "a+b");
        // Escapes of UTF-8 decode to the character; bytes that are not UTF-8 to U+FFFD.
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
    }
}
