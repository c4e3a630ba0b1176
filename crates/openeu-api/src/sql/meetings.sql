-- GET /meetings. The filters placeholder becomes the conditions of the filters given (each
-- with its own bind parameter) or `true`; the limit and offset placeholders become their
-- parameters. One prepared statement per filter combination, each with a plan that fits it.
with page as (
    select m.id, m.source, m.title, m.description, m.start_time, m.end_time, m.country,
           m.location, m.member_name, m.url,
           -- The same topics expression as meeting.sql: one shape for both endpoints.
           coalesce((select json_agg(json_build_object('id', t.id, 'name', t.name) order by t.name)
                     from public.meeting_topics mt join public.topics t on t.id = mt.topic_id
                     where mt.meeting_id = m.id), '[]'::json) as topics
    from public.meetings m
    where {filters}
    order by m.start_time, m.id
    limit {limit}::int8 offset {offset}::int8
)
-- The whole response body. next_cursor is set when the page is full: base64url (unpadded) of
-- the JSON object of the last item's start time (t) and id, which the handler decodes again.
select json_build_object(
    'items', coalesce((select json_agg(page order by page.start_time, page.id) from page), '[]'::json),
    'limit', {limit}::int8,
    'next_cursor', (
        select translate(rtrim(replace(encode(convert_to(
                   json_build_object('t', page.start_time, 'id', page.id)::text, 'UTF8'), 'base64'),
                   E'\n', ''), '='), '+/', '-_')
        from page
        where (select count(*) from page) = {limit}::int8
        order by page.start_time desc, page.id desc
        limit 1
    )
)::text
