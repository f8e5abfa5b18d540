//! Writing to the terminal: aligned tables, key/value blocks, JSON, and text safe to print.

use std::io::{self, Write as _};
use std::time::Duration;

use serde::Serialize;
use unicode_width::UnicodeWidthStr as _;

use crate::error::{CliError, Result};

/// Writes `text` and a newline to stdout.
///
/// A closed pipe (`osb catalog | head -1`) ends output quietly; other write errors are reported.
pub(crate) fn stdout_text(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    let result = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    match result {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Local {
            message: format!("cannot write to stdout: {e}"),
        }),
        _ => Ok(()),
    }
}

/// Writes one line to stderr, ignoring failures (there is nowhere else to report them).
pub(crate) fn stderr_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// Pretty-prints a value as JSON on stdout.
pub(crate) fn stdout_json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Local {
        message: format!("cannot encode the output as JSON: {e}"),
    })?;
    stdout_text(&text)
}

/// Makes text from a broker safe for a terminal: control characters (newlines, escape
/// sequences) are shown escaped instead of being interpreted.
pub(crate) fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// [`clean`]s each line of `text`, keeping the line breaks.
pub(crate) fn clean_lines(text: &str) -> String {
    text.lines().map(clean).collect::<Vec<_>>().join("\n")
}

/// An aligned table with a header row; every cell is [`clean`]ed.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are blank, extra cells are dropped).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| clean(c)).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, columns separated by two spaces, without trailing blanks.
    pub(crate) fn render(&self) -> String {
        render_rows(std::iter::once(&self.header).chain(&self.rows))
    }
}

/// Columns are aligned by display width, so wide (CJK, emoji) names line up too.
fn render_rows<'a>(rows: impl Iterator<Item = &'a Vec<String>> + Clone) -> String {
    let columns = rows.clone().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows.clone() {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.width());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Aligned `key  value` lines; every value is [`clean`]ed.
pub(crate) fn key_values(pairs: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(k, v)| vec![k.to_string(), clean(v)])
        .collect();
    render_rows(rows.iter())
}

/// `yes` / `no`.
pub(crate) fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

/// A short human duration: `850ms`, `12s`, `3m05s`, `2h00m`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.subsec_millis())
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// A JSON value on one line; strings without quotes.
pub(crate) fn plain_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A word as typed in a POSIX shell: unchanged when safe, single-quoted otherwise.
pub(crate) fn shell_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@%+=,".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_escape_control_characters() {
        let mut table = Table::new(&["NAME", "ID", "STATE"]);
        table.row(vec!["db".into(), "1234".into(), "ok".into()]);
        table.row(vec!["a-longer-name".into(), "5".into()]);
        table.row(vec!["evil\u{1b}[31m".into(), "6\n7".into(), "x".into()]);
        assert_eq!(
            table.render(),
            "NAME            ID    STATE\n\
             db              1234  ok\n\
             a-longer-name   5\n\
             evil\\u{1b}[31m  6\\n7  x\n"
        );
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let mut table = Table::new(&["NAME", "PLAN"]);
        table.row(vec!["数据库".into(), "sync".into()]);
        table.row(vec!["db".into(), "async".into()]);
        assert_eq!(
            table.render(),
            "NAME    PLAN\n\
             数据库  sync\n\
             db      async\n"
        );
    }

    #[test]
    fn key_values_align() {
        assert_eq!(
            key_values(&[("name", "db".into()), ("last operation", "x".into())]),
            "name            db\nlast operation  x\n"
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("my-db"), "my-db");
        assert_eq!(shell_word("my db"), "'my db'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(duration(Duration::from_secs(7200)), "2h00m");
    }
}
