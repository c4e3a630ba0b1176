-- The OpenEU schema: meetings from several sources unified in one table, legislative files,
-- topics and their assignment to meetings, and user profiles keyed by Supabase's auth.users.
-- Guarded with IF NOT EXISTS / OR REPLACE so it also applies on a real Supabase project.

create table if not exists public.meetings (
    id          text primary key,
    source      text not null check (source in ('european_parliament', 'mep', 'council', 'commission', 'national_parliament')),
    title       text not null check (title <> ''),
    description text,
    start_time  timestamptz not null,
    end_time    timestamptz check (end_time is null or end_time >= start_time),
    -- ISO 3166-1 alpha-2 code, or EU for the institutions.
    country     text check (country ~ '^[A-Z]{2}$'),
    location    text,
    member_name text,
    url         text,
    -- Built from the other columns by the seed renderer; what `q` searches besides the title.
    search_text text not null default '',
    search_vector tsvector generated always as (
        to_tsvector('simple', title || ' ' || coalesce(description, '') || ' ' || search_text)
    ) stored,
    created_at  timestamptz not null default now()
);

create index if not exists meetings_start_id_idx on public.meetings (start_time, id);
create index if not exists meetings_country_start_idx on public.meetings (country, start_time, id);
create index if not exists meetings_source_start_idx on public.meetings (source, start_time, id);
create index if not exists meetings_search_idx on public.meetings using gin (search_vector);

create table if not exists public.legislative_files (
    -- The procedure reference, e.g. 2023/0212(COD).
    id          text primary key check (id ~ '^[0-9]{4}/[0-9]{4}\([A-Z]{3}\)$'),
    title       text not null check (title <> ''),
    status      text not null check (status in ('preparatory', 'awaiting_committee', 'awaiting_plenary', 'awaiting_council', 'in_trilogue', 'adopted', 'withdrawn', 'rejected')),
    committee   text,
    rapporteur  text,
    lodged_on   date not null,
    updated_on  date,
    search_vector tsvector generated always as (
        to_tsvector('simple', id || ' ' || title || ' ' || coalesce(committee, '') || ' ' || coalesce(rapporteur, ''))
    ) stored
);

create index if not exists legislative_files_lodged_idx on public.legislative_files (lodged_on desc, id);
create index if not exists legislative_files_search_idx on public.legislative_files using gin (search_vector);

create table if not exists public.topics (
    id          text primary key check (id ~ '^[a-z0-9-]+$'),
    name        text not null unique,
    description text
);

create table if not exists public.meeting_topics (
    meeting_id text not null references public.meetings (id) on delete cascade,
    topic_id   text not null references public.topics (id) on delete cascade,
    primary key (meeting_id, topic_id)
);

create index if not exists meeting_topics_topic_idx on public.meeting_topics (topic_id);

create table if not exists public.profiles (
    id           uuid primary key references auth.users (id) on delete cascade,
    display_name text not null default '',
    countries    text[] not null default '{}',
    topic_ids    text[] not null default '{}',
    newsletter   boolean not null default false,
    created_at   timestamptz not null default now()
);

-- Row-level security as on Supabase: public data is readable by everyone, a profile only by
-- its owner. The API connects as a role that bypasses RLS and applies the same rules itself.
alter table public.meetings enable row level security;
alter table public.legislative_files enable row level security;
alter table public.topics enable row level security;
alter table public.meeting_topics enable row level security;
alter table public.profiles enable row level security;

drop policy if exists "public read" on public.meetings;
create policy "public read" on public.meetings for select to anon, authenticated using (true);
drop policy if exists "public read" on public.legislative_files;
create policy "public read" on public.legislative_files for select to anon, authenticated using (true);
drop policy if exists "public read" on public.topics;
create policy "public read" on public.topics for select to anon, authenticated using (true);
drop policy if exists "public read" on public.meeting_topics;
create policy "public read" on public.meeting_topics for select to anon, authenticated using (true);
drop policy if exists "own profile" on public.profiles;
create policy "own profile" on public.profiles for all to authenticated using (auth.uid() = id) with check (auth.uid() = id);

grant select on public.meetings, public.legislative_files, public.topics, public.meeting_topics to anon, authenticated;
grant select, insert, update, delete on public.profiles to authenticated;
