-- What a Supabase database provides before any migration runs, for plain PostgreSQL 15: the
-- API roles, the auth schema with auth.users and its helper functions, the extensions schema
-- and the CLI's migration history table. Idempotent. Used by the service's tests and the local
-- database image; never applied to a real Supabase project, which has all of this already.

do $$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

create schema if not exists extensions;
create schema if not exists auth;
create schema if not exists supabase_migrations;

create table if not exists auth.users (
    id         uuid primary key,
    email      text unique,
    created_at timestamptz not null default now()
);

create or replace function auth.jwt() returns jsonb
    language sql stable
    as $$ select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;

create or replace function auth.uid() returns uuid
    language sql stable
    as $$ select nullif(auth.jwt() ->> 'sub', '')::uuid $$;

create or replace function auth.role() returns text
    language sql stable
    as $$ select coalesce(auth.jwt() ->> 'role', 'anon') $$;

create table if not exists supabase_migrations.schema_migrations (
    version    text primary key,
    name       text,
    statements text[]
);

grant usage on schema public, extensions, auth to anon, authenticated, service_role;
grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;
alter default privileges in schema public grant select on tables to anon, authenticated;
alter default privileges in schema public grant all on tables to service_role;
