//! The database: a connection pool with deadlines, and one parameterised statement per
//! endpoint. Statements return their result as JSON text built by Postgres (`json_agg`,
//! `row_to_json`), which the handlers pass on without re-encoding.

use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::{ToSql, Type};

use crate::{
    connection::{Connection, PoolMode},
    tls::RustlsConnect,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const POOL_WAIT: Duration = Duration::from_secs(2);
const POOL_SIZE: usize = 16;
/// How long a statement may take, from asking for a connection to the last row: the statement
/// timeout plus a margin. Postgres enforces the statement timeout itself; this deadline catches
/// what it cannot see, such as a pooler queueing the statement while its server is down.
const QUERY_DEADLINE: Duration = Duration::from_secs(6);

#[derive(Debug)]
pub enum Error {
    /// No connection could be had in time: a 503.
    Unavailable(String),
    /// The database refused a parameter's value (SQLSTATE class 22, data exception, such as an
    /// out-of-range time or a NUL byte): a 400. Parameters are validated before, so this is a
    /// validation gap, but it is the caller's input, not a server fault. The text is the
    /// SQLSTATE only: PostgreSQL's message quotes the value.
    Invalid(String),
    /// The statement failed: a 500 (parameters are validated before, so this is a bug).
    Query(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unavailable(why) => write!(f, "database unavailable: {why}"),
            Error::Invalid(code) => write!(f, "the database refused a value (SQLSTATE {code})"),
            Error::Query(why) => write!(f, "query failed: {why}"),
        }
    }
}

/// A migration version as the Supabase CLI records it: the timestamp (YYYYMMDDHHMMSS) that
/// begins the migration's file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration(String);

impl Migration {
    pub fn new(version: impl Into<String>) -> Migration {
        Migration(version.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this migration is `expected` or a later one, comparing the versions as the
    /// numbers they are. A version that is not a number reaches nothing.
    pub fn reaches(&self, expected: &str) -> bool {
        match (self.0.parse::<u64>(), expected.parse::<u64>()) {
            (Ok(actual), Ok(expected)) => actual >= expected,
            _ => false,
        }
    }
}

pub struct Db {
    pool: Pool,
    host: String,
    mode: PoolMode,
}

/// The session settings every statement runs under. Postgres takes them as startup options;
/// a pooler refuses those (pgbouncer: "unsupported startup parameter: options").
const SETTINGS: [(&str, &str); 2] = [("statement_timeout", "5000"), ("TimeZone", "UTC")];

/// Generic plans: each filter combination is its own statement (see meetings.sql), so a generic
/// plan fits it, and Postgres' default would re-plan every execution of a statement with a
/// bound LIMIT (about 15% of the query's cost, `bench api` showed). Only named statements have
/// plans to keep, so this matters where they exist: directly and through a session pooler.
const GENERIC_PLANS: (&str, &str) = ("plan_cache_mode", "force_generic_plan");

/// A bound parameter with its type: statements are prepared with the types given, so a
/// transaction-mode connection can send them unnamed in one round trip (`query_typed`).
type Param<'a> = (&'a (dyn ToSql + Sync), Type);

pub struct MeetingFilter<'a> {
    pub start: Option<&'a str>,
    pub end: Option<&'a str>,
    pub country: Option<&'a str>,
    pub source: Option<&'a str>,
    /// A topic's id or name.
    pub topic: Option<&'a str>,
    pub q: Option<&'a str>,
    /// Keyset position: items strictly after (`start_time`, id).
    pub after: Option<(&'a str, &'a str)>,
    pub limit: i64,
    pub offset: i64,
}

pub struct FileFilter<'a> {
    pub q: Option<&'a str>,
    pub status: Option<&'a str>,
    pub committee: Option<&'a str>,
    pub year: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

// One statement per endpoint, in src/sql/. Every parameter is bound as text (or int8) and cast
// in SQL, so the driver never has to know the type and a NULL means "no filter".
const MEETINGS_SQL: &str = include_str!("sql/meetings.sql");

const MEETING_SQL: &str = include_str!("sql/meeting.sql");

const FILES_SQL: &str = include_str!("sql/legislative_files.sql");

const FILE_SQL: &str = include_str!("sql/legislative_file.sql");

const COUNTRIES_SQL: &str = include_str!("sql/countries.sql");

const TOPICS_SQL: &str = include_str!("sql/topics.sql");

const PROFILE_SQL: &str = include_str!("sql/profile.sql");

impl Db {
    /// A pool for `connection` (not connected yet: connections are made on demand, with
    /// deadlines).
    pub fn connect(connection: Connection) -> Result<Db, String> {
        let Connection {
            pg: mut config,
            ssl,
            roots,
            pool: mode,
            ..
        } = connection;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("openeu-api");
        if mode == PoolMode::Direct {
            let options: Vec<String> = SETTINGS
                .iter()
                .chain([&GENERIC_PLANS])
                .map(|(name, value)| format!("-c {name}={value}"))
                .collect();
            config.options(options.join(" "));
        }
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_default();
        // With sslmode=disable tokio-postgres never asks the connector to connect.
        let tls = RustlsConnect::new(ssl.verify(), roots.as_ref())?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let mut builder = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(POOL_WAIT));
        if mode == PoolMode::Session {
            // The pooler keeps one server connection per client connection: set once.
            builder = builder.post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .simple_query(&set_statements("set", true))
                        .await
                        .map(drop)
                        .map_err(HookError::Backend)
                })
            }));
        }
        let pool = builder
            .build()
            .map_err(|e| format!("building the connection pool: {e}"))?;
        Ok(Db { pool, host, mode })
    }

    /// How the pool reaches the database.
    pub fn pool_mode(&self) -> PoolMode {
        self.mode
    }

    /// The database host, for `GET /` (never credentials).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// One row, one text column: the JSON a statement rendered; None when no row matched.
    async fn json(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<String>, Error> {
        match tokio::time::timeout(QUERY_DEADLINE, self.json_now(sql, params)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Unavailable(format!(
                "no answer from the database within {}s",
                QUERY_DEADLINE.as_secs()
            ))),
        }
    }

    async fn json_now(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<String>, Error> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let row = if self.mode == PoolMode::Transaction {
            // A transaction pins the pooler's server connection: the settings, then the
            // statement unnamed (parse, bind and execute in one message), then the end. The
            // three are pipelined: sent together, answered in order, one round trip.
            let begin = format!("begin; {}", set_statements("set local", false));
            let (begun, rows, ended) = tokio::join!(
                client.simple_query(&begin),
                client.query_typed(sql, params),
                client.simple_query("commit"),
            );
            begun.map_err(classify)?;
            let rows = rows.map_err(classify)?;
            ended.map_err(classify)?;
            rows.into_iter().next()
        } else {
            let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
            let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
            let statement = client
                .prepare_typed_cached(sql, &types)
                .await
                .map_err(classify)?;
            client
                .query_opt(&statement, &values)
                .await
                .map_err(classify)?
        };
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    async fn json_required(&self, sql: &str, params: &[Param<'_>]) -> Result<String, Error> {
        self.json(sql, params)
            .await?
            .ok_or_else(|| Error::Query("the statement returned no row".to_owned()))
    }

    /// The newest migration applied (None for an empty history); a Query error when the
    /// database has no history table.
    pub async fn migration(&self) -> Result<Option<Migration>, Error> {
        let version = self
            .json(
                "select version from supabase_migrations.schema_migrations
                 where version ~ '^[0-9]{1,18}$' order by version::int8 desc limit 1",
                &[],
            )
            .await?;
        Ok(version.map(Migration))
    }

    pub async fn starts_before(&self, start: &str, end: &str) -> Result<bool, Error> {
        let text = self
            .json_required(
                "select ($1::text::timestamptz < $2::text::timestamptz)::text",
                &[(&start, Type::TEXT), (&end, Type::TEXT)],
            )
            .await?;
        Ok(text == "true")
    }

    pub async fn meetings(&self, f: &MeetingFilter<'_>) -> Result<String, Error> {
        let mut b = Binder::default();
        if let Some(start) = &f.start {
            b.add("m.start_time >= ?::text::timestamptz", &[start]);
        }
        if let Some(end) = &f.end {
            b.add("m.start_time < ?::text::timestamptz", &[end]);
        }
        if let Some(country) = &f.country {
            b.add("m.country = ?::text", &[country]);
        }
        if let Some(source) = &f.source {
            b.add("m.source = ?::text", &[source]);
        }
        if let Some(topic) = &f.topic {
            b.add(
                "exists (select 1 from public.meeting_topics mt join public.topics t on t.id = mt.topic_id
                         where mt.meeting_id = m.id and (t.id = ?::text or t.name = ?::text))",
                &[topic, topic],
            );
        }
        if let Some(q) = &f.q {
            b.add(
                "m.search_vector @@ websearch_to_tsquery('simple', ?::text)",
                &[q],
            );
        }
        if let Some((t, id)) = &f.after {
            b.add(
                "(m.start_time, m.id) > (?::text::timestamptz, ?::text)",
                &[t, id],
            );
        }
        let limit = b.param(&f.limit, Type::INT8);
        let offset = b.param(&f.offset, Type::INT8);
        let Binder { conditions, params } = b;
        let sql = meetings_sql(&conditions, &limit, &offset);
        self.json_required(&sql, &params).await
    }

    pub async fn meeting(&self, id: &str) -> Result<Option<String>, Error> {
        self.json(MEETING_SQL, &[(&id, Type::TEXT)]).await
    }

    pub async fn legislative_files(&self, f: &FileFilter<'_>) -> Result<String, Error> {
        self.json_required(
            FILES_SQL,
            &[
                (&f.q, Type::TEXT),
                (&f.status, Type::TEXT),
                (&f.committee, Type::TEXT),
                (&f.year, Type::INT8),
                (&f.limit, Type::INT8),
                (&f.offset, Type::INT8),
            ],
        )
        .await
    }

    pub async fn legislative_file(&self, id: &str) -> Result<Option<String>, Error> {
        self.json(FILE_SQL, &[(&id, Type::TEXT)]).await
    }

    pub async fn countries(&self) -> Result<String, Error> {
        self.json_required(COUNTRIES_SQL, &[]).await
    }

    pub async fn topics(&self) -> Result<String, Error> {
        self.json_required(TOPICS_SQL, &[]).await
    }

    /// The profile of `user` (the JWT's sub); None for an unknown user or a non-UUID id.
    pub async fn profile(&self, user: &str) -> Result<Option<String>, Error> {
        if !openeu_env::is_uuid(user) {
            return Ok(None);
        }
        self.json(PROFILE_SQL, &[(&user, Type::TEXT)]).await
    }
}

/// Conditions with their bind parameters, numbered in order.
#[derive(Default)]
struct Binder<'a> {
    conditions: Vec<String>,
    params: Vec<Param<'a>>,
}

impl<'a> Binder<'a> {
    /// Adds `condition`, replacing each `?` with the next parameter's `$n` (text values).
    fn add(&mut self, condition: &str, values: &[&'a (dyn ToSql + Sync)]) {
        let mut text = condition.to_owned();
        for value in values {
            text = text.replacen('?', &self.param(*value, Type::TEXT), 1);
        }
        self.conditions.push(text);
    }

    /// Binds `value` as `ty` and returns its placeholder.
    fn param(&mut self, value: &'a (dyn ToSql + Sync), ty: Type) -> String {
        self.params.push((value, ty));
        format!("${}", self.params.len())
    }
}

/// `SET` statements for the session settings (with `generic`, plan caching too).
fn set_statements(verb: &str, generic: bool) -> String {
    SETTINGS
        .iter()
        .chain(generic.then_some(&GENERIC_PLANS))
        .map(|(name, value)| format!("{verb} {name} = '{value}';"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// meetings.sql with its placeholders filled in.
pub fn meetings_sql(conditions: &[String], limit: &str, offset: &str) -> String {
    let filters = if conditions.is_empty() {
        "true".to_owned()
    } else {
        conditions.join("\n      and ")
    };
    MEETINGS_SQL
        .replace("{filters}", &filters)
        .replace("{limit}", limit)
        .replace("{offset}", offset)
}

/// No connection: the pool's words, with the server's when it refused us.
fn unavailable(err: deadpool_postgres::PoolError) -> Error {
    match err {
        deadpool_postgres::PoolError::Backend(e) => match classify(e) {
            Error::Query(text) | Error::Unavailable(text) | Error::Invalid(text) => {
                Error::Unavailable(text)
            }
        },
        other => Error::Unavailable(other.to_string()),
    }
}

/// By SQLSTATE class: connection-level failures are "unavailable" (503), data exceptions are
/// the caller's value (400), and any other statement error is a bug (500).
fn classify(err: tokio_postgres::Error) -> Error {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        // Class 22: a value the statement cannot take (22007/22008 bad or out-of-range time,
        // 22009 bad time zone offset, 22021 NUL byte, 22P02 bad number, ...).
        if code.starts_with("22") {
            return Error::Invalid(code.to_owned());
        }
        // The server's own words name the problem; quoted parts may hold a value, so they go.
        let hint = if db.message().contains("no encryption") {
            " (the server accepts only TLS connections: use sslmode=require or stronger in DATABASE_URL)"
        } else {
            ""
        };
        let text = format!(
            "{} ({}): {}{hint}",
            db.severity(),
            code,
            without_quoted(db.message())
        );
        // Not the statement's fault: the connection is broken (08: connection exception, such
        // as pgbouncer's "cannot connect to server"), refused (28: authorization, pg_hba),
        // short of resources (53: too many connections) or the server is going away (57P).
        if ["08", "28", "53", "57P"]
            .iter()
            .any(|c| code.starts_with(c))
        {
            Error::Unavailable(text)
        } else {
            Error::Query(text)
        }
    } else {
        // tokio-postgres' own text leaves out the cause ("error performing TLS handshake"),
        // which is the part that says what to fix.
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text = format!("{text}: {cause_text}");
            }
            source = cause.source();
        }
        Error::Unavailable(text)
    }
}

/// `text` with each double-quoted part replaced by `"…"`: PostgreSQL quotes the value it
/// refused, and the logs must not carry a caller's input.
fn without_quoted(text: &str) -> String {
    text.split('"')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
        .collect::<Vec<_>>()
        .join("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_stay_out_of_the_log_text() {
        assert_eq!(
            without_quoted(r#"invalid input syntax for type timestamp: "2026-01-01 secret""#),
            r#"invalid input syntax for type timestamp: "…""#
        );
        assert_eq!(without_quoted("no quotes"), "no quotes");
    }

    #[test]
    fn migrations_compare_as_numbers() {
        let at = Migration::new("20261127000000");
        assert!(at.reaches("20261127000000"));
        assert!(at.reaches("20261126235959"));
        assert!(!at.reaches("20261127000001"));
        assert!(Migration::new("99991231235959").reaches("20261127000000"));
        assert!(!Migration::new("2026112700000x").reaches("20261127000000"));
    }

    #[test]
    fn both_meeting_statements_render_topics_alike() {
        // /meetings and /meetings/{id} give each meeting's topics in one shape.
        let shape = "coalesce((select json_agg(json_build_object('id', t.id, 'name', t.name) order by t.name) \
                     from public.meeting_topics mt join public.topics t on t.id = mt.topic_id \
                     where mt.meeting_id = m.id), '[]'::json) as topics";
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        for sql in [MEETINGS_SQL, MEETING_SQL] {
            assert!(words(sql).contains(&words(shape)), "{sql}");
        }
    }

    #[test]
    fn session_settings_as_statements() {
        assert_eq!(
            set_statements("set local", false),
            "set local statement_timeout = '5000'; set local TimeZone = 'UTC';"
        );
        assert!(
            set_statements("set", true).ends_with("set plan_cache_mode = 'force_generic_plan';")
        );
    }

    #[test]
    fn uuids() {
        assert!(openeu_env::is_uuid("3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"));
        assert!(!openeu_env::is_uuid("3f2c1a9e-8b7d-4c6e-9f0a"));
        assert!(!openeu_env::is_uuid("'); drop table profiles; --"));
    }
}
