select row_to_json(p)::text from (
    select id, display_name, countries, topic_ids, newsletter, created_at
    from public.profiles where id = $1::text::uuid
) p
