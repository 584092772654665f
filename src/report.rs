//! The bounce report as rows: one set of columns for the console's page, its CSV
//! download and `mailgate bounces`, so the three always agree.
//!
//! The CSV goes to spreadsheets, and its cells hold text strangers wrote (a bounce's
//! diagnostic, a remote host). A cell that a spreadsheet would read as a formula (it
//! begins with `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a
//! leading `'`, as OWASP's CSV-injection guidance describes; quoting is the `csv`
//! crate's (RFC 4180).

use crate::domain::bounce::BounceRecord;
use crate::domain::format_time_ms;

/// The columns of the bounce list, shared by the CSV and the table.
pub const BOUNCE_COLUMNS: [&str; 10] = [
    "time",
    "address",
    "domain",
    "reason",
    "status",
    "permanent",
    "sender_problem",
    "message_id",
    "remote_mta",
    "diagnostic",
];

/// A bounce as a row of [`BOUNCE_COLUMNS`].
pub fn bounce_row(b: &BounceRecord) -> [String; 10] {
    [
        format_time_ms(b.at_ms),
        b.address.clone().unwrap_or_default(),
        b.recipient_domain.clone().unwrap_or_default(),
        b.reason.clone().unwrap_or_default(),
        b.status.clone().unwrap_or_default(),
        b.permanent.to_string(),
        b.sender_problem.to_string(),
        b.message_id.clone().unwrap_or_default(),
        b.remote_mta.clone().unwrap_or_default(),
        b.diagnostic
            .clone()
            .unwrap_or_default()
            .replace(['\r', '\n'], " "),
    ]
}

/// A cell as a spreadsheet will take it as text: one that would start a formula gets a
/// leading `'`.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The bounces as CSV text, every cell spreadsheet-safe.
pub fn bounces_csv(list: &[BounceRecord]) -> String {
    bounces_csv_headed(&BOUNCE_COLUMNS, list)
}

/// The same rows under another header row (the console's, in the operator's language).
pub fn bounces_csv_headed(header: &[&str; 10], list: &[BounceRecord]) -> String {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let write = |out: &mut csv::Writer<Vec<u8>>, row: &[&str]| {
        out.write_record(row.iter().map(|c| spreadsheet_safe(c).into_owned()))
            .expect("writing CSV to memory cannot fail");
    };
    write(&mut out, header);
    for b in list {
        let row = bounce_row(b);
        write(&mut out, &row.each_ref().map(String::as_str));
    }
    let bytes = out.into_inner().expect("a Vec takes every byte");
    String::from_utf8(bytes).expect("CSV of UTF-8 cells is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_a_formula_are_neutralised_and_quoting_holds() {
        let mut b = BounceRecord {
            at_ms: 0,
            source: crate::domain::bounce::BounceSource::Api,
            kind: Some("dsn".into()),
            authenticated: true,
            message_id: None,
            flow_id: None,
            address: Some("taro@example.jp".into()),
            recipient_domain: Some("example.jp".into()),
            action: Some("failed".into()),
            status: None,
            permanent: true,
            reason: None,
            diagnostic: None,
            remote_mta: None,
            sender_problem: false,
            effects: Vec::new(),
        };
        b.diagnostic = Some("=HYPERLINK(\"http://x\",\"click\")".into());
        b.remote_mta = Some("+cmd|' /C calc'!A0".into());
        b.reason = Some("@SUM(1+1)".into());
        b.status = Some("-2+3".into());
        b.message_id = Some("\tlead".into());
        let csv = bounces_csv(&[b]);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} in {csv}"
            );
        }
        assert_eq!(&row[9], "'=HYPERLINK(\"http://x\",\"click\")");
        assert_eq!(&row[8], "'+cmd|' /C calc'!A0");
        assert_eq!(&row[1], "taro@example.jp");
    }
}
