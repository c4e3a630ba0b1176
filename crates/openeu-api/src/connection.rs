//! How the service reaches Postgres: `DATABASE_URL` read with libpq's meaning of `sslmode` and
//! `sslrootcert` (tokio-postgres knows only `disable`, `prefer` and `require`, and no
//! `sslrootcert`), and whether a pooler stands in between (`DATABASE_POOL_MODE`, or guessed from
//! Supabase's pooler port and user name).
//!
//! The defaults: `prefer` on loopback and Unix sockets, as libpq; `require` for any other host,
//! where libpq would silently fall back to plaintext.

use std::{net::IpAddr, path::PathBuf};

use tokio_postgres::config::Host;

use crate::tls::{Roots, Verify};

/// libpq's `sslmode` values (`allow` is not offered: it prefers plaintext).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What the certificate check is, for the TLS connector.
    pub fn verify(self) -> Verify {
        match self {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Verify::Nothing,
            SslMode::VerifyCa => Verify::Chain,
            SslMode::VerifyFull => Verify::ChainAndHost,
        }
    }
}

/// What sits between the service and Postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// Postgres itself: session settings as startup options, named statements, generic plans.
    Direct,
    /// A pooler in session mode (Supavisor on 5432): one server connection per client
    /// connection, but no startup `options`, so settings are `SET` once per connection.
    Session,
    /// A pooler in transaction mode (Supavisor on 6543, pgbouncer `pool_mode=transaction`): a
    /// server connection only for the length of a transaction, so no named statements and no
    /// session settings; each request is one transaction that begins with `SET LOCAL`.
    Transaction,
}

impl PoolMode {
    pub const NAMES: [&'static str; 3] = ["direct", "session", "transaction"];

    pub fn parse(text: &str) -> Option<PoolMode> {
        Some(match text {
            "direct" => PoolMode::Direct,
            "session" => PoolMode::Session,
            "transaction" => PoolMode::Transaction,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            PoolMode::Direct => "direct",
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

/// Supavisor's transaction-mode port.
const SUPAVISOR_TRANSACTION_PORT: u16 = 6543;

/// A connection's settings, parsed and checked.
#[derive(Debug, Clone)]
pub struct Connection {
    /// What tokio-postgres gets: the URL without the parameters it does not understand.
    pub pg: tokio_postgres::Config,
    pub ssl: SslMode,
    pub roots: Option<Roots>,
    pub pool: PoolMode,
    /// Whether `pool` was guessed rather than set.
    pub pool_guessed: bool,
}

impl Connection {
    /// Parses `url` (a postgres:// URL or libpq's key=value form); `pool` is
    /// `DATABASE_POOL_MODE` when set. Errors never contain the URL (it holds the password).
    pub fn parse(url: &str, pool: Option<PoolMode>) -> Result<Connection, String> {
        let (rest, ssl, rootcert) = take_tls_parameters(url)?;
        let pg: tokio_postgres::Config = rest.parse().map_err(|e| {
            format!("DATABASE_URL is not a connection string the driver accepts ({e})")
        })?;
        let roots = rootcert.map(|r| {
            if r == "system" {
                Roots::System
            } else {
                Roots::File(PathBuf::from(r))
            }
        });
        Ok(Connection::new(pg, ssl, roots, pool))
    }

    /// Settings for `pg` with libpq's defaults for what is not given.
    pub fn new(
        mut pg: tokio_postgres::Config,
        ssl: Option<SslMode>,
        roots: Option<Roots>,
        pool: Option<PoolMode>,
    ) -> Connection {
        let loopback = pg.get_hosts().iter().all(is_loopback)
            && pg.get_hostaddrs().iter().all(IpAddr::is_loopback);
        let ssl = match (ssl, &roots) {
            // libpq: `require` with a root certificate behaves like `verify-ca`.
            (Some(SslMode::Require), Some(_)) => SslMode::VerifyCa,
            (Some(mode), _) => mode,
            (None, _) if loopback => SslMode::Prefer,
            (None, _) => SslMode::Require,
        };
        pg.ssl_mode(match ssl {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        let (pool, pool_guessed) = match pool {
            Some(mode) => (mode, false),
            None => (guess_pool_mode(&pg), true),
        };
        Connection {
            pg,
            ssl,
            roots,
            pool,
            pool_guessed,
        }
    }
}

/// Supabase's pooler is Supavisor: transaction mode on 6543, and its user names carry the
/// project (`postgres.<ref>`), which a direct connection's never do.
fn guess_pool_mode(pg: &tokio_postgres::Config) -> PoolMode {
    if pg.get_ports().first() == Some(&SUPAVISOR_TRANSACTION_PORT) {
        PoolMode::Transaction
    } else if pg
        .get_user()
        .is_some_and(|u| u.strip_prefix("postgres.").is_some_and(|r| !r.is_empty()))
    {
        PoolMode::Session
    } else {
        PoolMode::Direct
    }
}

fn is_loopback(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

type TlsParameters = (String, Option<SslMode>, Option<String>);

/// Removes `sslmode` and `sslrootcert` from a URL's query or a key=value string, returning
/// what is left and their values.
fn take_tls_parameters(url: &str) -> Result<TlsParameters, String> {
    let mut ssl = None;
    let mut rootcert = None;
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => {
                ssl = Some(SslMode::parse(&value).ok_or_else(|| {
                    format!("DATABASE_URL: sslmode={value} is not one of disable, prefer, require, verify-ca, verify-full")
                })?);
                Ok(true)
            }
            "sslrootcert" => {
                rootcert = Some(value);
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(key, openeu_env::percent_decode(value))? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        // key=value form; values with spaces would be quoted, and neither parameter has any.
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            if !take(key.trim(), value.trim_matches('\'').to_owned())? {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok((rest, ssl, rootcert))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Connection {
        Connection::parse(url, None).unwrap()
    }

    #[test]
    fn loopback_prefers_tls_and_remote_hosts_require_it() {
        assert_eq!(parse("postgres://u@127.0.0.1:5432/db").ssl, SslMode::Prefer);
        assert_eq!(parse("postgres://u@localhost/db").ssl, SslMode::Prefer);
        assert_eq!(
            parse("postgres://u@db.abc.supabase.co/db").ssl,
            SslMode::Require
        );
        assert_eq!(
            parse("postgres://u@db.abc.supabase.co/db?sslmode=disable").ssl,
            SslMode::Disable
        );
    }

    #[test]
    fn libpq_modes_and_root_certificates_are_taken_out_of_the_url() {
        let c = parse(
            "postgresql://u:p@db.x.supabase.co:5432/postgres?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt&application_name=a",
        );
        assert_eq!(c.ssl, SslMode::VerifyFull);
        assert_eq!(c.roots, Some(Roots::File(PathBuf::from("/etc/ca.crt"))));
        assert_eq!(c.pg.get_application_name(), Some("a"));
        // libpq: require with a root certificate is verify-ca.
        let c = parse("postgres://u@h/db?sslmode=require&sslrootcert=system");
        assert_eq!((c.ssl, c.roots), (SslMode::VerifyCa, Some(Roots::System)));
        let c = parse("host=h user=u sslmode=verify-ca sslrootcert=/ca.pem");
        assert_eq!(c.ssl, SslMode::VerifyCa);
        assert_eq!(c.pg.get_user(), Some("u"));
    }

    #[test]
    fn a_bad_sslmode_is_named_without_the_url() {
        let err = Connection::parse("postgres://u:hunter2@h/db?sslmode=verify", None).unwrap_err();
        assert!(err.contains("sslmode=verify is not one of"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn supabase_pooler_is_recognised_by_port_and_user() {
        assert_eq!(
            parse(
                "postgres://postgres.abcd:p@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
            )
            .pool,
            PoolMode::Transaction
        );
        assert_eq!(
            parse(
                "postgres://postgres.abcd:p@aws-0-eu-central-1.pooler.supabase.com:5432/postgres"
            )
            .pool,
            PoolMode::Session
        );
        assert_eq!(
            parse("postgres://postgres:p@db.abcd.supabase.co/postgres").pool,
            PoolMode::Direct
        );
        let set = Connection::parse("postgres://u@h:6543/db", Some(PoolMode::Direct)).unwrap();
        assert_eq!((set.pool, set.pool_guessed), (PoolMode::Direct, false));
    }
}
