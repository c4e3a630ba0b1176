select row_to_json(x)::text from (
    select m.id, m.source, m.title, m.description, m.start_time, m.end_time, m.country,
           m.location, m.member_name, m.url,
           coalesce((select json_agg(json_build_object('id', t.id, 'name', t.name) order by t.name)
                     from public.meeting_topics mt join public.topics t on t.id = mt.topic_id
                     where mt.meeting_id = m.id), '[]'::json) as topics
    from public.meetings m where m.id = $1::text
) x
