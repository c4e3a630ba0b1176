//! CSV fixtures (RFC 4180 with a header row), parsed on every core for big files. An unquoted
//! empty field is NULL; `""` is an empty string.

use std::{borrow::Cow, sync::Arc};

use anyhow::{Result, bail};

use super::fixture::{Fields, Loc, Row, Unit, Value};

/// RFC 4180 CSV with a header row. An unquoted empty field is NULL; `""` is an empty string.
/// Big files are parsed on every core, split at record boundaries.
pub(super) fn load_csv<'a>(text: &'a str, name: &Arc<str>) -> Result<Vec<Row<'a>>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunks = record_chunks(text, threads);
    let Some(&(header_end, _)) = chunks.first() else {
        return Ok(Vec::new());
    };
    let header = parse_csv(&text[..header_end])
        .map_err(|(line, why)| anyhow::anyhow!("{name} line {line}: {why}"))?;
    let Some((_, header)) = header.into_iter().next() else {
        return Ok(Vec::new());
    };
    let header: Arc<Vec<Arc<str>>> = Arc::new(
        header
            .into_iter()
            .map(|f| Arc::from(f.as_deref().unwrap_or_default()))
            .collect(),
    );
    let bounds: Vec<(usize, usize, usize)> = chunks
        .iter()
        .zip(
            chunks
                .iter()
                .skip(1)
                .map(|(start, _)| *start)
                .chain([text.len()]),
        )
        .map(|(&(start, line), end)| (start, end, line))
        .collect();
    let parts: Vec<Result<Vec<Row<'a>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .iter()
            .map(|&(start, end, first_line)| {
                let (text, header, name) = (&text, &header, &name);
                scope.spawn(move || -> Result<Vec<Row<'a>>> {
                    let records = parse_csv(&text[start..end]).map_err(|(line, why)| {
                        anyhow::anyhow!("{name} line {}: {why}", line + first_line - 1)
                    })?;
                    let mut rows = Vec::with_capacity(records.len());
                    for (line, fields) in records {
                        let at = Loc {
                            file: Arc::clone(name),
                            unit: Unit::Line,
                            n: line + first_line - 1,
                        };
                        if fields.len() != header.len() {
                            bail!(
                                "{at}: {} fields, the header has {}",
                                fields.len(),
                                header.len()
                            );
                        }
                        let values = fields
                            .into_iter()
                            .map(|f| f.map_or(Value::Null, Value::Str))
                            .collect();
                        rows.push(Row {
                            at,
                            values: Fields {
                                names: Arc::clone(header),
                                values,
                            },
                        });
                    }
                    Ok(rows)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("CSV thread panicked"))
            .collect()
    });
    let parts: Vec<Vec<Row<'a>>> = parts.into_iter().collect::<Result<_>>()?;
    let mut rows = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        rows.extend(part);
    }
    Ok(rows)
}

/// Where the header ends and where each of about `parts` chunks of records starts (byte offset
/// and line number), always at a newline outside quotes. The first entry is the header's end.
pub(super) fn record_chunks(text: &str, parts: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let (mut in_quotes, mut line) = (false, 1);
    let mut target = 0;
    let mut step = usize::MAX;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' => {
                line += 1;
                if !in_quotes && i + 1 >= target {
                    chunks.push((i + 1, line));
                    if step == usize::MAX {
                        // After the header: split the rest evenly.
                        step = ((bytes.len() - i) / parts.max(1)).max(1);
                    }
                    target = i + 1 + step;
                }
            }
            _ => {}
        }
    }
    if chunks.is_empty() && !text.is_empty() {
        chunks.push((text.len(), line));
    }
    // A trailing empty chunk would parse as nothing; drop it.
    chunks.retain(|&(start, _)| start <= text.len());
    if chunks.len() > 1 && chunks.last().is_some_and(|&(start, _)| start == text.len()) {
        chunks.pop();
    }
    chunks
}

/// Records with their starting line; a field is None when unquoted and empty.
#[allow(clippy::type_complexity)]
pub(super) fn parse_csv(
    text: &str,
) -> Result<Vec<(usize, Vec<Option<Cow<'_, str>>>)>, (usize, String)> {
    let bytes = text.as_bytes();
    let mut records = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < bytes.len() {
        let start_line = line;
        let mut fields = Vec::with_capacity(
            records
                .last()
                .map_or(8, |(_, f): &(usize, Vec<Option<Cow<'_, str>>>)| f.len()),
        );
        loop {
            if bytes.get(i) == Some(&b'"') {
                i += 1;
                // Borrowed unless the field has an escaped quote ("") to collapse.
                let mut field: Cow<'_, str> = Cow::Borrowed("");
                loop {
                    let rest = &text[i..];
                    let Some(quote) = rest.find('"') else {
                        return Err((start_line, "unterminated quoted field".to_owned()));
                    };
                    let chunk = &rest[..quote];
                    line += chunk.bytes().filter(|b| *b == b'\n').count();
                    if field.is_empty() && matches!(field, Cow::Borrowed(_)) {
                        field = Cow::Borrowed(chunk);
                    } else {
                        field.to_mut().push_str(chunk);
                    }
                    i += quote + 1;
                    if bytes.get(i) == Some(&b'"') {
                        field.to_mut().push('"');
                        i += 1;
                    } else {
                        break;
                    }
                }
                if !matches!(bytes.get(i), None | Some(b',' | b'\n' | b'\r')) {
                    return Err((line, "text after a closing quote".to_owned()));
                }
                fields.push(Some(field));
            } else {
                let rest = &text[i..];
                let end = rest.find([',', '\n', '\r']).unwrap_or(rest.len());
                let field = &rest[..end];
                fields.push(if field.is_empty() {
                    None
                } else {
                    Some(Cow::Borrowed(field))
                });
                i += end;
            }
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'\r') => {
                    i += 1;
                    if bytes.get(i) == Some(&b'\n') {
                        i += 1;
                    }
                    line += 1;
                    break;
                }
                Some(b'\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        if !(fields.len() == 1 && fields[0].is_none()) {
            records.push((start_line, fields));
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_newlines_and_nulls() {
        let records = parse_csv("a,b,c\n1,\"x,\"\"y\"\"\nz\",\n2,\"\",w\r\n").unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1],
            (2, vec![Some("1".into()), Some("x,\"y\"\nz".into()), None])
        );
        assert_eq!(
            records[2],
            (4, vec![Some("2".into()), Some("".into()), Some("w".into())])
        );
        assert!(parse_csv("a\n\"open\n").is_err());
        // Fields without an escaped quote borrow the file's text.
        assert!(matches!(records[2].1[2], Some(Cow::Borrowed("w"))));
        assert!(matches!(records[1].1[1], Some(Cow::Owned(_))));
    }

    #[test]
    fn chunked_csv_parsing_matches_a_single_pass() {
        let mut text = String::from("a,b\n");
        for i in 0..200 {
            text.push_str(&format!("{i},\"line {i}\nsecond, \"\"quoted\"\"\"\n"));
        }
        let whole = parse_csv(&text).unwrap();
        for parts in [1, 2, 3, 7] {
            let chunks = record_chunks(&text, parts);
            assert_eq!(chunks[0], (4, 2), "the header ends after its line");
            let mut records = Vec::new();
            let ends = chunks.iter().skip(1).map(|c| c.0).chain([text.len()]);
            for (&(start, line), end) in chunks.iter().zip(ends) {
                let part = parse_csv(&text[start..end]).unwrap();
                records.extend(part.into_iter().map(|(l, f)| (l + line - 1, f)));
            }
            assert_eq!(records, whole[1..], "{parts} parts");
        }
    }
}
