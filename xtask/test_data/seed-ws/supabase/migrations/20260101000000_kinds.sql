create table if not exists public.kinds (
    id integer primary key,
    label text not null,
    amount numeric,
    active boolean not null default true,
    day date,
    at timestamptz,
    owner uuid references auth.users (id),
    doc jsonb,
    tags text[] not null default '{}',
    summary text not null default '',
    vector tsvector generated always as (to_tsvector('simple', label)) stored
);
create table if not exists public.bulk (
    n bigint primary key,
    kind integer not null references public.kinds (id),
    note text
);
