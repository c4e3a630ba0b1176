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
)::text
