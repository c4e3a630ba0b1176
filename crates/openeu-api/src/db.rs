//! The database: a connection pool with deadlines, and one parameterised statement per
//! endpoint. Statements return their result as JSON text built by Postgres (`json_agg`,
//! `row_to_json`), which the handlers pass on without re-encoding.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, types::ToSql};

/// The newest migration in supabase/migrations; `/ready` fails until the database has it. A
/// test keeps this equal to the newest file name.
pub const EXPECTED_MIGRATION: &str = "20261127000000";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const POOL_WAIT: Duration = Duration::from_secs(2);
const POOL_SIZE: usize = 16;

#[derive(Debug)]
pub enum Error {
    /// No connection could be had in time: a 503.
    Unavailable(String),
    /// The statement failed: a 500 (parameters are validated before, so this is a bug).
    Query(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unavailable(why) => write!(f, "database unavailable: {why}"),
            Error::Query(why) => write!(f, "query failed: {why}"),
        }
    }
}

pub struct Db {
    pool: Pool,
    host: String,
}

pub struct MeetingFilter<'a> {
    pub start: Option<&'a str>,
    pub end: Option<&'a str>,
    pub country: Option<&'a str>,
    pub source: Option<&'a str>,
    pub q: Option<&'a str>,
    /// Keyset position: items strictly after (start_time, id).
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

/// Every timestamp parameter is bound as text and cast in SQL, so the driver never has to
/// know the type and a NULL means "no filter".
const MEETINGS_SQL: &str = "
with page as (
    select m.id, m.source, m.title, m.description, m.start_time, m.end_time, m.country,
           m.location, m.member_name, m.url,
           coalesce((select array_agg(mt.topic_id order by mt.topic_id)
                     from public.meeting_topics mt where mt.meeting_id = m.id), '{}') as topics
    from public.meetings m
    where ($1::text is null or m.start_time >= $1::text::timestamptz)
      and ($2::text is null or m.start_time < $2::text::timestamptz)
      and ($3::text is null or m.country = $3::text)
      and ($4::text is null or m.source = $4::text)
      and ($5::text is null or m.search_vector @@ websearch_to_tsquery('simple', $5::text))
      and ($6::text is null or (m.start_time, m.id) > ($6::text::timestamptz, $7::text))
    order by m.start_time, m.id
    limit $8::int8 offset $9::int8
)
select json_build_object(
    'items', coalesce((select json_agg(page order by page.start_time, page.id) from page), '[]'::json),
    'count', (select count(*) from page),
    'last', (select json_build_object('t', page.start_time, 'id', page.id) from page
             order by page.start_time desc, page.id desc limit 1)
)::text";

const MEETING_SQL: &str = "
select row_to_json(x)::text from (
    select m.id, m.source, m.title, m.description, m.start_time, m.end_time, m.country,
           m.location, m.member_name, m.url,
           coalesce((select json_agg(json_build_object('id', t.id, 'name', t.name) order by t.name)
                     from public.meeting_topics mt join public.topics t on t.id = mt.topic_id
                     where mt.meeting_id = m.id), '[]'::json) as topics
    from public.meetings m where m.id = $1::text
) x";

const FILES_SQL: &str = "
with matching as (
    select f.id, f.title, f.status, f.committee, f.rapporteur, f.lodged_on, f.updated_on
    from public.legislative_files f
    where ($1::text is null or f.search_vector @@ websearch_to_tsquery('simple', $1::text))
      and ($2::text is null or f.status = $2::text)
      and ($3::text is null or f.committee = $3::text)
      and ($4::int8 is null or extract(year from f.lodged_on) = $4::int8)
), page as (
    select * from matching order by lodged_on desc, id limit $5::int8 offset $6::int8
)
select json_build_object(
    'items', coalesce((select json_agg(page order by page.lodged_on desc, page.id) from page), '[]'::json),
    'total', (select count(*) from matching),
    'limit', $5::int8,
    'offset', $6::int8
)::text";

const FILE_SQL: &str = "
select row_to_json(f)::text from (
    select id, title, status, committee, rapporteur, lodged_on, updated_on
    from public.legislative_files where id = $1::text
) f";

const COUNTRIES_SQL: &str = "
select coalesce(json_agg(json_build_object('country', country, 'meetings', n) order by country), '[]'::json)::text
from (select country, count(*) as n from public.meetings where country is not null group by country) c";

const TOPICS_SQL: &str = "
select coalesce(json_agg(json_build_object('id', t.id, 'name', t.name, 'description', t.description,
    'meetings', (select count(*) from public.meeting_topics mt where mt.topic_id = t.id)) order by t.name), '[]'::json)::text
from public.topics t";

const PROFILE_SQL: &str = "
select row_to_json(p)::text from (
    select id, display_name, countries, topic_ids, newsletter, created_at
    from public.profiles where id = $1::text::uuid
) p";

impl Db {
    /// A pool for `url` (not connected yet: connections are made on demand, with deadlines).
    pub fn connect(mut config: tokio_postgres::Config) -> Result<Db, String> {
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("openeu-api")
            .options("-c statement_timeout=5000 -c TimeZone=UTC");
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_default();
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| format!("building the connection pool: {e}"))?;
        Ok(Db { pool, host })
    }

    /// The database host, for `GET /` (never credentials).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// One row, one text column: the JSON a statement rendered; None when no row matched.
    async fn json(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<String>, Error> {
        let client = self.pool.get().await.map_err(|e| Error::Unavailable(e.to_string()))?;
        let statement = client.prepare_cached(sql).await.map_err(classify)?;
        let row = client.query_opt(&statement, params).await.map_err(classify)?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    async fn json_required(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<String, Error> {
        self.json(sql, params).await?.ok_or_else(|| Error::Query("the statement returned no row".to_owned()))
    }

    pub async fn migration_version(&self) -> Result<Option<String>, Error> {
        self.json("select max(version) from supabase_migrations.schema_migrations", &[]).await
    }

    pub async fn starts_before(&self, start: &str, end: &str) -> Result<bool, Error> {
        let text = self
            .json_required("select ($1::text::timestamptz < $2::text::timestamptz)::text", &[&start, &end])
            .await?;
        Ok(text == "true")
    }

    pub async fn meetings(&self, f: &MeetingFilter<'_>) -> Result<String, Error> {
        let (after_t, after_id) = (f.after.map(|a| a.0), f.after.map(|a| a.1));
        self.json_required(
            MEETINGS_SQL,
            &[&f.start, &f.end, &f.country, &f.source, &f.q, &after_t, &after_id, &f.limit, &f.offset],
        )
        .await
    }

    pub async fn meeting(&self, id: &str) -> Result<Option<String>, Error> {
        self.json(MEETING_SQL, &[&id]).await
    }

    pub async fn legislative_files(&self, f: &FileFilter<'_>) -> Result<String, Error> {
        self.json_required(FILES_SQL, &[&f.q, &f.status, &f.committee, &f.year, &f.limit, &f.offset]).await
    }

    pub async fn legislative_file(&self, id: &str) -> Result<Option<String>, Error> {
        self.json(FILE_SQL, &[&id]).await
    }

    pub async fn countries(&self) -> Result<String, Error> {
        self.json_required(COUNTRIES_SQL, &[]).await
    }

    pub async fn topics(&self) -> Result<String, Error> {
        self.json_required(TOPICS_SQL, &[]).await
    }

    /// The profile of `user` (the JWT's sub); None for an unknown user or a non-UUID id.
    pub async fn profile(&self, user: &str) -> Result<Option<String>, Error> {
        if !is_uuid(user) {
            return Ok(None);
        }
        self.json(PROFILE_SQL, &[&user]).await
    }
}

/// Connection-level failures are "unavailable" (503); statement errors are bugs (500).
fn classify(err: tokio_postgres::Error) -> Error {
    if err.as_db_error().is_some() {
        Error::Query(err.to_string())
    } else {
        Error::Unavailable(err.to_string())
    }
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_migration_is_the_newest_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../supabase/migrations");
        let newest = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .max()
            .unwrap();
        assert_eq!(newest.split('_').next().unwrap(), EXPECTED_MIGRATION, "update EXPECTED_MIGRATION");
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"));
        assert!(!is_uuid("3f2c1a9e-8b7d-4c6e-9f0a"));
        assert!(!is_uuid("'); drop table profiles; --"));
    }
}
