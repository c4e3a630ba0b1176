select coalesce(json_agg(json_build_object('id', t.id, 'name', t.name, 'description', t.description,
    'meetings', (select count(*) from public.meeting_topics mt where mt.topic_id = t.id)) order by t.name), '[]'::json)::text
from public.topics t
