//! The outbox route: each message becomes `<id>.eml` in `delivery.outbox_dir`, written
//! to a temporary name and renamed, so a reader never sees half a file. For development
//! and for machines with no mail server; the links in the message are logged by the
//! caller so a developer can follow them.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::{AttemptReport, Envelope, Outcome};

/// Writes the message file. A write error defers the message (the disk may be full).
pub fn deliver(dir: &Path, id: &str, envelope: &Envelope, raw: &[u8]) -> Outcome {
    let started = Instant::now();
    let path = dir.join(format!("{id}.eml"));
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        // The envelope as Postfix's sink records it, so tools read either alike.
        write!(
            f,
            "X-Envelope-From: <{}>\r\nX-Envelope-To: <{}>\r\n",
            envelope.mail_from, envelope.rcpt_to
        )?;
        f.write_all(raw)?;
        f.sync_data()?;
        std::fs::rename(&tmp, &path)
    })();
    let mut report = AttemptReport {
        remote_host: Some("outbox".into()),
        duration_ms: started.elapsed().as_millis() as u64,
        ..AttemptReport::default()
    };
    match result {
        Ok(()) => {
            report.detail = Some(path.display().to_string());
            Outcome::Delivered(report)
        }
        Err(e) => {
            report.reply = Some(format!("cannot write {}: {e}", path.display()));
            Outcome::Deferred(report)
        }
    }
}
