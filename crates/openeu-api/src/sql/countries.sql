select coalesce(json_agg(json_build_object('country', country, 'meetings', n) order by country), '[]'::json)::text
from (select country, count(*) as n from public.meetings where country is not null group by country) c
