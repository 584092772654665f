//! `mailgate invite` and `mailgate reset`: one address, or a spreadsheet's worth.
//!
//! A CSV file has a header row naming its columns (`address`, and optionally `name` and
//! `locale`, in any order). Every row is checked first; each bad one is reported with
//! its line number and reason, and the good rows proceed, with a progress bar. A row
//! whose address was already invited (an open or completed flow, or an account) is
//! skipped unless `--resend`, so running the same file again mails nobody twice.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use chrono::TimeZone;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::control::{Backend, Request};
use crate::domain::{Address, format_time_ms, now_ms};
use crate::flow::Started;

use super::{Cli, load_config};

/// The flags of `mailgate invite`.
pub struct InviteArgs<'a> {
    pub address: Option<&'a str>,
    pub name: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub csv: Option<&'a Path>,
    pub at: Option<&'a str>,
    pub dry_run: bool,
    pub resend: bool,
}

/// One good row of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub address: Address,
    pub name: Option<String>,
    pub locale: Option<String>,
}

/// A bad row: its line number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: usize,
    pub reason: String,
}

/// Why a whole file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not UTF-8 text: save it from the spreadsheet as \"CSV UTF-8\"")]
    Encoding(String),
    #[error("{0} is empty: it needs a header row (address,name,locale) and one row per person")]
    Empty(String),
    #[error(
        "{path}: the header row has no address column (found: {found}); expected address,name,locale"
    )]
    NoAddressColumn { path: String, found: String },
}

/// Splits CSV text (RFC 4180: quoted fields, doubled quotes, CRLF or LF; the `csv`
/// crate's reader) into records, each with the line number it starts on. Blank lines
/// are skipped; a byte-order mark is ignored.
pub fn records(text: &str) -> Vec<(usize, Vec<String>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    // Lines are counted from each record's byte offset: the reader's own line count
    // lags behind on CRLF text.
    let (mut line, mut counted_to) = (1, 0);
    // The text is UTF-8 and the reader flexible, so reading cannot fail; a record it
    // could not read would end the list rather than be invented.
    while let Ok(true) = reader.read_record(&mut record) {
        let bytes = text.as_bytes();
        let mut start = record.position().map_or(counted_to, |p| p.byte() as usize);
        // On CRLF text a record's offset can be that of the line feed before it.
        while bytes.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            start += 1;
        }
        line += memchr::memchr_iter(b'\n', &bytes[counted_to..start]).count();
        counted_to = start;
        let fields: Vec<String> = record.iter().map(str::to_string).collect();
        if !(fields.len() == 1 && fields[0].trim().is_empty()) {
            out.push((line, fields));
        }
    }
    out
}

fn column(name: &str) -> Option<&'static str> {
    match name.trim().to_lowercase().as_str() {
        "address" | "email" | "e-mail" | "mail" | "メールアドレス" => Some("address"),
        "name" | "氏名" | "名前" => Some("name"),
        "locale" | "language" | "lang" | "言語" => Some("locale"),
        _ => None,
    }
}

/// Reads a CSV file into good and bad rows.
pub fn read_csv(path: &Path) -> Result<(Vec<Row>, Vec<BadRow>), CsvError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CsvError::Read {
        path: shown.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| CsvError::Encoding(shown.clone()))?;
    parse_csv(&text, &shown)
}

/// Parses CSV text; `shown` names the file in errors.
pub fn parse_csv(text: &str, shown: &str) -> Result<(Vec<Row>, Vec<BadRow>), CsvError> {
    let mut recs = records(text).into_iter();
    let Some((_, header)) = recs.next() else {
        return Err(CsvError::Empty(shown.to_string()));
    };
    let columns: Vec<Option<&str>> = header.iter().map(|h| column(h)).collect();
    let Some(address_at) = columns.iter().position(|c| *c == Some("address")) else {
        return Err(CsvError::NoAddressColumn {
            path: shown.to_string(),
            found: header.join(","),
        });
    };
    let name_at = columns.iter().position(|c| *c == Some("name"));
    let locale_at = columns.iter().position(|c| *c == Some("locale"));
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, fields) in recs {
        if fields.len() != header.len() {
            bad.push(BadRow {
                line,
                reason: format!(
                    "{} field(s), but the header has {} ({}): a column is missing or extra",
                    fields.len(),
                    header.len(),
                    header.join(",")
                ),
            });
            continue;
        }
        let address = match Address::parse(&fields[address_at]) {
            Ok(a) => a,
            Err(e) => {
                bad.push(BadRow {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let locale = locale_at
            .map(|i| fields[i].trim().to_lowercase())
            .filter(|l| !l.is_empty());
        if let Some(l) = &locale
            && l != "ja"
            && l != "en"
        {
            bad.push(BadRow {
                line,
                reason: format!("locale {l:?} is not one of \"ja\", \"en\""),
            });
            continue;
        }
        let key = address.to_string().to_lowercase();
        if let Some(first) = seen.get(&key) {
            bad.push(BadRow {
                line,
                reason: format!("{address} is a duplicate of line {first}"),
            });
            continue;
        }
        seen.insert(key, line);
        let name = name_at
            .map(|i| fields[i].trim().to_string())
            .filter(|n| !n.is_empty());
        if name.as_deref().is_some_and(|n| n.contains(['\r', '\n'])) {
            bad.push(BadRow {
                line,
                reason: "the name contains a line break".into(),
            });
            continue;
        }
        good.push(Row {
            line,
            address,
            name,
            locale,
        });
    }
    Ok((good, bad))
}

/// Why `--at` was refused.
#[derive(Debug, thiserror::Error)]
pub enum AtError {
    #[error("--at {text:?}: write it as \"2026-05-01 09:00\" (in {zone}) or as RFC 3339")]
    Unreadable { text: String, zone: String },
    #[error("--at {text:?} does not exist in {zone}")]
    NoSuchTime { text: String, zone: String },
    #[error("--at {text:?} is in the past")]
    InThePast { text: String },
}

/// Parses `--at`: RFC 3339 (`2026-05-01T09:00:00+09:00`), or `YYYY-MM-DD HH:MM` in the
/// zone of `flows.default_locale` (Asia/Tokyo for ja).
pub fn parse_at(config: &Config, text: &str, now: u64) -> Result<u64, AtError> {
    let tz = crate::flow::mail::zone(config, &config.flows.default_locale);
    let ms = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        t.timestamp_millis()
    } else {
        let naive = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M"))
            .map_err(|_| AtError::Unreadable {
                text: text.to_string(),
                zone: tz.name().to_string(),
            })?;
        tz.from_local_datetime(&naive)
            .earliest()
            .ok_or_else(|| AtError::NoSuchTime {
                text: text.to_string(),
                zone: tz.name().to_string(),
            })?
            .timestamp_millis()
    };
    if ms < now as i64 - 60_000 {
        return Err(AtError::InThePast {
            text: text.to_string(),
        });
    }
    Ok(ms.max(0) as u64)
}

/// `mailgate invite`.
pub async fn run(cli: &Cli, args: InviteArgs<'_>) -> ExitCode {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let now = now_ms();
    let at = match args.at.map(|t| parse_at(&config, t, now)).transpose() {
        Ok(at) => at,
        Err(e) => {
            eprintln!("mailgate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(l) = args.locale
        && l != "ja"
        && l != "en"
    {
        eprintln!("mailgate: --locale {l:?} is not one of ja, en");
        return ExitCode::from(2);
    }
    let (rows, bad) = match (args.csv, args.address) {
        (Some(path), None) => match read_csv(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mailgate: {e}");
                return ExitCode::from(2);
            }
        },
        (None, Some(address)) => match Address::parse(address) {
            Ok(a) => (
                vec![Row {
                    line: 0,
                    address: a,
                    name: args.name.map(str::to_string),
                    locale: args.locale.map(str::to_string),
                }],
                vec![],
            ),
            Err(e) => {
                eprintln!("mailgate: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("mailgate: give an ADDRESS or --csv FILE (not both)");
            return ExitCode::from(2);
        }
    };
    let is_csv = args.csv.is_some();
    for b in &bad {
        println!("line {}: {}", b.line, b.reason);
    }
    let backend = match Backend::connect(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    super::note_server_config(cli, &backend);
    let bar = if is_csv {
        let bar = ProgressBar::new(rows.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let (mut invited, mut skipped, mut failed) = (0, 0, 0);
    for row in &rows {
        let request = Request::Invite {
            address: row.address.to_string(),
            name: row.name.clone(),
            locale: row.locale.clone(),
            not_before_ms: at,
            only_if_new: is_csv && !args.resend,
            dry_run: args.dry_run,
        };
        let where_ = if is_csv {
            format!("line {}: ", row.line)
        } else {
            String::new()
        };
        let answer = backend
            .call(request)
            .await
            .and_then(|v| serde_json::from_value::<Started>(v).map_err(anyhow::Error::from));
        let text = match answer {
            Ok(Started::Started {
                flow_id,
                expires_ms,
                ..
            }) => {
                invited += 1;
                let when = at.map(|t| format!(", mail scheduled for {}", format_time_ms(t)));
                format!(
                    "{where_}invited {} (flow {flow_id}; link expires {}{})",
                    row.address,
                    format_time_ms(expires_ms),
                    when.unwrap_or_default()
                )
            }
            Ok(Started::WouldStart) => {
                invited += 1;
                format!("{where_}would invite {}", row.address)
            }
            Ok(Started::Skipped { reason }) => {
                skipped += 1;
                format!(
                    "{where_}skipped {}: {reason} (--resend to send a new link)",
                    row.address
                )
            }
            Err(e) => {
                failed += 1;
                format!("{where_}{}: {e:#}", row.address)
            }
        };
        bar.suspend(|| println!("{text}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if is_csv {
        let verb = if args.dry_run {
            "would be invited"
        } else {
            "invited"
        };
        println!(
            "{invited} {verb}, {skipped} skipped (already invited), {} bad row(s), {failed} failed",
            bad.len()
        );
    }
    if bad.is_empty() && failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `mailgate reset ADDRESS`.
pub async fn reset(cli: &Cli, address: &str) -> ExitCode {
    super::store_commands::run(
        cli,
        Request::Reset {
            address: address.to_string(),
        },
        |v| match serde_json::from_value::<Started>(v) {
            Ok(Started::Started {
                flow_id,
                expires_ms,
                ..
            }) => println!(
                "reset link mailed to {address} (flow {flow_id}; link expires {})",
                format_time_ms(expires_ms)
            ),
            Ok(other) => println!("{other:?}"),
            Err(e) => println!("(unreadable answer: {e})"),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rows_are_named_by_line_and_good_rows_survive() {
        let text = "\u{feff}address,name,locale\r\n\
                    hanako@example.jp,\"Yamada, Hanako\",ja\r\n\
                    not-an-address,Taro,ja\r\n\
                    HANAKO@EXAMPLE.JP,Again,en\r\n\
                    jiro@example.jp,Jiro\r\n\
                    \r\n\
                    kate@example.com,Kate,fr\r\n\
                    ken@example.com,\"Ken \"\"K\"\" Sato\",\r\n";
        let (good, bad) = parse_csv(text, "t.csv").unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!(good[0].name.as_deref(), Some("Yamada, Hanako"));
        assert_eq!(good[1].name.as_deref(), Some("Ken \"K\" Sato"));
        assert_eq!(good[1].locale, None);
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 7]);
        assert!(
            bad[1].reason.contains("duplicate of line 2"),
            "{:?}",
            bad[1]
        );
        assert!(bad[2].reason.contains("missing"), "{:?}", bad[2]);
    }

    #[test]
    fn a_file_without_an_address_column_is_refused_whole() {
        assert!(matches!(
            parse_csv("name,locale\nx,ja\n", "t.csv"),
            Err(CsvError::NoAddressColumn { .. })
        ));
    }
}
