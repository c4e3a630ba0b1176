//! CSV fixtures (RFC 4180 with a header row), parsed on every core for big files. An unquoted
//! empty field is NULL; `""` is an empty string.

use std::{borrow::Cow, sync::Arc};

use anyhow::{Result, bail};

use super::fixture::{Fields, Loc, Row, Unit, Value};

/// RFC 4180 CSV with a header row. An unquoted empty field is NULL; `""` is an empty string.
/// Big files are parsed on `threads` threads, split only at record boundaries that a sequential
/// scan agrees on, so the answer (rows, or the first error in file order) is the same on any
/// number of cores.
pub(super) fn load_csv<'a>(text: &'a str, name: &Arc<str>, threads: usize) -> Result<Vec<Row<'a>>> {
    let chunks = record_chunks(text, threads);
    let Some(&(header_end, _)) = chunks.first() else {
        return Ok(Vec::new());
    };
    let (header, error) = parse_csv(&text[..header_end]);
    if let Some((line, why)) = error {
        bail!("{name} line {line}: {why}");
    }
    let Some((_, header)) = header.into_iter().next() else {
        return Ok(Vec::new());
    };
    let header: Vec<Arc<str>> = header
        .into_iter()
        .map(|f| Arc::from(f.as_deref().unwrap_or_default()))
        .collect();
    for (i, column) in header.iter().enumerate() {
        if let Some(first) = header[..i].iter().position(|c| c == column) {
            bail!(
                "{name} line 1: column `{column}` appears twice in the header (columns {} and {}); each column once",
                first + 1,
                i + 1
            );
        }
    }
    let header = Arc::new(header);
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
                    let (records, error) = parse_csv(&text[start..end]);
                    let mut rows = Vec::with_capacity(records.len());
                    // The records before a syntax error come first: the first error in file
                    // order wins, whichever chunk it is in.
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
                    if let Some((line, why)) = error {
                        bail!("{name} line {}: {why}", line + first_line - 1);
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
/// and line number). It runs the same grammar as `parse_csv`, byte by byte, so a boundary is
/// always the end of a record as a sequential parse sees it. At the first byte that grammar
/// refuses (a quote inside an unquoted field, text after a closing quote) it stops splitting:
/// the rest is one chunk, whose parse reports that error at its true line. The first entry is
/// the header's end.
pub(super) fn record_chunks(text: &str, parts: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let mut line = 1;
    let mut target = 0;
    let mut step = usize::MAX;
    let mut i = 0;
    // One field per turn, in tight loops (this scan is sequential: it must be fast).
    'scan: while i < bytes.len() {
        if bytes[i] == b'"' {
            i += 1;
            loop {
                let Some(quote) = bytes[i..].iter().position(|&b| b == b'"') else {
                    break 'scan; // unterminated: the parse reports it
                };
                line += bytes[i..i + quote].iter().filter(|&&b| b == b'\n').count();
                i += quote + 1;
                if bytes.get(i) == Some(&b'"') {
                    i += 1;
                } else {
                    break;
                }
            }
        } else {
            let Some(end) = bytes[i..]
                .iter()
                .position(|&b| matches!(b, b',' | b'\n' | b'\r' | b'"'))
            else {
                break; // the last field of a file without a final newline
            };
            i += end;
            if bytes[i] == b'"' {
                break; // a quote inside an unquoted field: the parse reports it
            }
        }
        let next = match bytes.get(i) {
            None => break,
            Some(b',') => {
                i += 1;
                continue;
            }
            Some(b'\n') => i + 1,
            Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => i + 2,
            Some(b'\r') => i + 1,
            Some(_) => break, // text after a closing quote: the parse reports it
        };
        line += 1;
        if next >= target {
            chunks.push((next, line));
            if step == usize::MAX {
                // After the header: split the rest evenly.
                step = ((bytes.len() - next) / parts.max(1)).max(1);
            }
            target = next + step;
        }
        i = next;
    }
    if chunks.is_empty() && !text.is_empty() {
        chunks.push((text.len(), line));
    }
    // A trailing empty chunk would parse as nothing; drop it.
    if chunks.len() > 1 && chunks.last().is_some_and(|&(start, _)| start == text.len()) {
        chunks.pop();
    }
    chunks
}

/// One parsed record: its first line and its fields (None when unquoted and empty).
pub(super) type Record<'t> = (usize, Vec<Option<Cow<'t, str>>>);

/// Records with their starting line, up to the first syntax error, which comes back with its
/// line: the records before it are still checked, so errors are reported in file order.
pub(super) fn parse_csv(text: &str) -> (Vec<Record<'_>>, Option<(usize, String)>) {
    let bytes = text.as_bytes();
    let mut records: Vec<Record<'_>> = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < bytes.len() {
        let start_line = line;
        let mut fields = Vec::with_capacity(records.last().map_or(8, |(_, f)| f.len()));
        loop {
            if bytes.get(i) == Some(&b'"') {
                i += 1;
                // Borrowed unless the field has an escaped quote ("") to collapse.
                let mut field: Cow<'_, str> = Cow::Borrowed("");
                loop {
                    let rest = &text[i..];
                    let Some(quote) = rest.find('"') else {
                        return (
                            records,
                            Some((
                                start_line,
                                format!("field {}: unterminated quoted field", fields.len() + 1),
                            )),
                        );
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
                    return (
                        records,
                        Some((
                            line,
                            format!(
                                "field {}: text after a closing quote; a quote inside a field is written twice (\"\")",
                                fields.len() + 1
                            ),
                        )),
                    );
                }
                fields.push(Some(field));
            } else {
                let rest = &text[i..];
                let end = rest
                    .bytes()
                    .position(|b| matches!(b, b',' | b'\n' | b'\r' | b'"'))
                    .unwrap_or(rest.len());
                let field = &rest[..end];
                if rest.as_bytes().get(end) == Some(&b'"') {
                    let quote = end;
                    // RFC 4180: a quote may appear only in a quoted field.
                    let line_start = text[..i + quote].rfind(['\n', '\r']).map_or(0, |p| p + 1);
                    let column = text[line_start..i + quote].chars().count() + 1;
                    return (
                        records,
                        Some((
                            line,
                            format!(
                                "column {column} (field {}): a quote inside an unquoted field; quote the whole field and double the quote (\"a\"\"b\"), or remove it",
                                fields.len() + 1
                            ),
                        )),
                    );
                }
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
    (records, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_newlines_and_nulls() {
        let (records, error) = parse_csv("a,b,c\n1,\"x,\"\"y\"\"\nz\",\n2,\"\",w\r\n");
        assert_eq!(error, None);
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1],
            (2, vec![Some("1".into()), Some("x,\"y\"\nz".into()), None])
        );
        assert_eq!(
            records[2],
            (4, vec![Some("2".into()), Some("".into()), Some("w".into())])
        );
        assert!(parse_csv("a\n\"open\n").1.is_some());
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
        let whole = parse_csv(&text).0;
        for parts in [1, 2, 3, 7] {
            let chunks = record_chunks(&text, parts);
            assert_eq!(chunks[0], (4, 2), "the header ends after its line");
            let mut records = Vec::new();
            let ends = chunks.iter().skip(1).map(|c| c.0).chain([text.len()]);
            for (&(start, line), end) in chunks.iter().zip(ends) {
                let part = parse_csv(&text[start..end]).0;
                records.extend(part.into_iter().map(|(l, f)| (l + line - 1, f)));
            }
            assert_eq!(records, whole[1..], "{parts} parts");
        }
    }

    fn error(result: Result<Vec<Row<'_>>>) -> String {
        match result {
            Ok(rows) => panic!("accepted {} rows", rows.len()),
            Err(err) => err.to_string(),
        }
    }

    fn rendered(rows: &[Row<'_>]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{} {:?}", r.at, r.values.values))
            .collect()
    }

    #[test]
    fn the_answer_does_not_depend_on_the_number_of_threads() {
        let name: Arc<str> = "big.csv".into();
        let mut good = String::from("id,city,note\n");
        for i in 0..300 {
            good.push_str(&format!(
                "{i},Brussels,\"line {i}\nquoted \"\"x\"\", \"\"y\"\"\"\n"
            ));
        }
        let expected = rendered(&load_csv(&good, &name, 1).unwrap());
        assert_eq!(expected.len(), 300);
        // A stray quote late in the file, after quoted fields with newlines: the old splitter
        // (toggling on every quote) cut records in two and blamed a later, valid line.
        let bad = good.replacen("250,Brussels", "250,Brus\"sels", 1);
        let mut errors = Vec::new();
        for threads in [1, 2, 3, 8] {
            assert_eq!(
                rendered(&load_csv(&good, &name, threads).unwrap()),
                expected,
                "{threads} threads"
            );
            errors.push(error(load_csv(&bad, &name, threads)));
        }
        assert!(errors.iter().all(|e| *e == errors[0]), "{errors:#?}");
        // Record 250 starts on line 2 + 2 * 250.
        assert!(
            errors[0].starts_with(
                "big.csv line 502: column 9 (field 2): a quote inside an unquoted field"
            ),
            "{}",
            errors[0]
        );
        // Text after a closing quote, and a field-count error before a later syntax error:
        // the first in file order, whatever the split.
        let late = good.replacen("\"line 280\n", "\"line 280\"x\n", 1);
        let both = late.replacen("20,Brussels,", "20,Brussels,extra,", 1);
        for (text, start) in [
            (
                &late,
                "big.csv line 562: field 3: text after a closing quote",
            ),
            (&both, "big.csv line 42: 4 fields, the header has 3"),
        ] {
            for threads in [1, 2, 8] {
                let err = error(load_csv(text, &name, threads));
                assert!(err.starts_with(start), "{threads} threads: {err}");
            }
        }
    }

    #[test]
    fn a_repeated_header_column_is_refused_naming_both() {
        let name: Arc<str> = "t.csv".into();
        let err = error(load_csv("id,name,id\n1,a,2\n", &name, 2));
        assert_eq!(
            err,
            "t.csv line 1: column `id` appears twice in the header (columns 1 and 3); each column once"
        );
    }
}
