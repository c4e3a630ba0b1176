-- Test rows for the service's integration tests: 42 meetings over five sources and eight
-- countries (two pairs share a start time, to test the id tie-break), ten legislative files,
-- topics and assignments, two users of which one has a profile.

insert into public.topics (id, name, description) values
    ('climate', 'Climate', 'Emission targets, adaptation, the Green Deal'),
    ('digital', 'Digital', 'Platforms, AI, data and cybersecurity'),
    ('energy', 'Energy', 'Markets, grids and security of supply'),
    ('migration', 'Migration', 'Asylum, borders and integration'),
    ('agriculture', 'Agriculture', 'The CAP and food systems'),
    ('trade', 'Trade', 'Agreements and tariffs');

insert into public.meetings (id, source, title, description, start_time, end_time, country, location, member_name, url, search_text)
select
    'm-' || lpad(i::text, 3, '0'),
    (array['european_parliament', 'mep', 'council', 'commission', 'national_parliament'])[1 + i % 5],
    (array['Plenary debate on climate targets', 'Meeting with farmers on the CAP', 'Energy Council working party',
           'Commission briefing on AI liability', 'Bundestag hearing on migration policy'])[1 + i % 5] || ' ' || i,
    case when i % 3 = 0 then 'Agenda item ' || i end,
    timestamptz '2026-01-05 09:00:00+00' + (i * interval '13 hours'),
    timestamptz '2026-01-05 09:00:00+00' + (i * interval '13 hours') + interval '2 hours',
    (array['DE', 'FR', 'IT', 'ES', 'PL', 'NL', 'BE', 'EU'])[1 + i % 8],
    (array['Brussels', 'Strasbourg', 'Berlin', 'Paris', 'Rome', 'Madrid', 'Warsaw', 'The Hague'])[1 + i % 8],
    case when i % 5 = 1 then 'MEP ' || (array['Anna Schmidt', 'Jean Dupont', 'Giulia Rossi'])[1 + i % 3] end,
    'https://example.eu/meetings/' || i,
    'week ' || (i / 7)
from generate_series(1, 40) as i;

-- Same start time as m-001 and m-002: ordering must fall back to the id.
insert into public.meetings (id, source, title, start_time, country, search_text) values
    ('m-001b', 'council', 'Tie-break meeting A', timestamptz '2026-01-05 09:00:00+00' + interval '13 hours', 'DE', ''),
    ('m-002b', 'council', 'Réunion tie-break B: ''quotes'' and \backslashes', timestamptz '2026-01-05 09:00:00+00' + interval '26 hours', 'FR', 'café');

insert into public.meeting_topics (meeting_id, topic_id)
select id, (array['climate', 'digital', 'energy', 'migration', 'agriculture'])[1 + (right(id, 1)::int % 5)]
from public.meetings where id ~ '^m-[0-9]{3}$';

insert into public.legislative_files (id, title, status, committee, rapporteur, lodged_on, updated_on) values
    ('2021/0211(COD)', 'Revision of the EU Emissions Trading System', 'adopted', 'ENVI', 'Peter Liese', '2021-07-14', '2023-05-10'),
    ('2021/0214(COD)', 'Carbon Border Adjustment Mechanism', 'adopted', 'ENVI', 'Mohammed Chahim', '2021-07-14', '2023-05-10'),
    ('2021/0106(COD)', 'Artificial Intelligence Act', 'adopted', 'IMCO', 'Brando Benifei', '2021-04-21', '2024-06-12'),
    ('2022/0140(COD)', 'European Health Data Space', 'adopted', 'ENVI', 'Tomislav Sokol', '2022-05-03', '2025-02-05'),
    ('2022/0302(COD)', 'Product liability for defective products', 'adopted', 'IMCO', 'Vlad-Marius Botos', '2022-09-28', '2024-11-18'),
    ('2023/0079(COD)', 'Net-Zero Industry Act', 'adopted', 'ITRE', 'Christian Ehler', '2023-03-16', '2024-06-13'),
    ('2023/0205(COD)', 'Soil Monitoring Law', 'in_trilogue', 'ENVI', 'Martin Hojsík', '2023-07-05', '2025-04-10'),
    ('2023/0212(COD)', 'Digital euro', 'awaiting_committee', 'ECON', 'Stefan Berger', '2023-06-28', null),
    ('2024/0035(COD)', 'Combating child sexual abuse', 'awaiting_plenary', 'LIBE', null, '2024-02-06', null),
    ('2025/0010(COD)', 'Critical Medicines Act', 'preparatory', null, null, '2025-03-11', null);

insert into auth.users (id, email) values
    ('3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60', 'ada@example.eu'),
    ('7d6e5f40-3a2b-4c1d-8e9f-0a1b2c3d4e5f', 'no-profile@example.eu');

insert into public.profiles (id, display_name, countries, topic_ids, newsletter) values
    ('3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60', 'Ada', '{DE,FR}', '{climate,digital}', true);
