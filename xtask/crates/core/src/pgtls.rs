//! TLS for the connections xtask makes to a database that is not on this machine (`db reset
//! --db-url`, and later `db push` and deploy's migrations): they go through psql, which
//! honours libpq's `sslmode` and `sslrootcert` itself, so the only job here is the policy.
//! A non-loopback host needs `sslmode=require` or stronger in the URL, unless the caller
//! passes `--allow-plaintext`; libpq's own default (`prefer`) would fall back to plaintext
//! without a word.

use anyhow::{Result, bail};

/// libpq's modes that always encrypt.
const ENCRYPTED: [&str; 3] = ["require", "verify-ca", "verify-full"];

/// Checks `url` against the policy and returns the environment that makes psql use the
/// URL's TLS settings (psql is given host, port and user as arguments, not the URL). The
/// error names the fix and never the URL (it may hold a password).
pub fn psql_env(url: &str, allow_plaintext: bool) -> Result<Vec<(&'static str, String)>> {
    let parameters = query_parameters(url);
    let get = |key: &str| {
        parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let host = openeu_env::parse_url(url)
        .map(|u| u.host.trim_matches(['[', ']']).to_owned())
        .unwrap_or_default();
    let mode = get("sslmode");
    let rootcert = get("sslrootcert");
    let encrypted = mode.as_deref().is_some_and(|m| ENCRYPTED.contains(&m))
        // libpq: a root certificate without a mode means verify-full's older sibling, verify-ca.
        || (mode.is_none() && rootcert.is_some());
    if !is_loopback(&host) && !encrypted && !allow_plaintext {
        bail!(
            "refusing a connection to {host} that may be plaintext (sslmode={}): add ?sslmode=verify-full&sslrootcert=<CA file> (Supabase: the project's CA certificate) or at least ?sslmode=require to the URL, or pass --allow-plaintext",
            mode.as_deref().unwrap_or("unset, libpq's prefer")
        );
    }
    let mut env = Vec::new();
    if let Some(mode) = mode {
        env.push(("PGSSLMODE", mode));
    }
    if let Some(root) = rootcert {
        env.push(("PGSSLROOTCERT", root));
    }
    Ok(env)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The query string's `key=value` pairs, percent-decoded.
fn query_parameters(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), openeu_env::percent_decode(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_hosts_need_an_encrypting_sslmode() {
        let err = psql_env("postgres://u:hunter2@db.abc.supabase.co/postgres", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sslmode=require") && err.contains("--allow-plaintext"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = psql_env("postgres://u@db.x/postgres?sslmode=prefer", false).unwrap_err();
        assert!(err.to_string().contains("sslmode=prefer"), "{err}");
        assert!(psql_env("postgres://u@db.x/postgres?sslmode=disable", true).is_ok());
    }

    #[test]
    fn the_url_tls_settings_reach_psql() {
        assert_eq!(
            psql_env(
                "postgres://u@db.x:5432/postgres?sslmode=verify-full&sslrootcert=%2Fca%2Fprod.crt",
                false
            )
            .unwrap(),
            vec![
                ("PGSSLMODE", "verify-full".to_owned()),
                ("PGSSLROOTCERT", "/ca/prod.crt".to_owned())
            ]
        );
        assert!(
            psql_env("postgres://u@127.0.0.1:54322/postgres", false)
                .unwrap()
                .is_empty()
        );
        assert!(psql_env("postgres://u@[::1]:54322/postgres", false).is_ok());
    }
}
