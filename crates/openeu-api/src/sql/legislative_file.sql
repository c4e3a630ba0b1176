select row_to_json(f)::text from (
    select id, title, status, committee, rapporteur, lodged_on, updated_on
    from public.legislative_files where id = $1::text
) f
