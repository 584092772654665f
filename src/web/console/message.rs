//! `/support/message/{id}`: one message as support needs it to answer "what exactly
//! did you send me": its header block and its whole timeline, and the headers as a
//! text file to attach to a ticket or to forward to the receiving provider.
//!
//! Never the body: it holds the person's link (and a code mail its code). The header
//! block is cut from the signed bytes at the first empty line when the message is
//! stored ([`crate::domain::header_block`]), so the body is never read here; a message
//! stored before headers were kept shows its record alone. Views and downloads are
//! audited like searches.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::sentence::{self, Lang};
use super::session::ConsoleUser;
use super::{ConsoleError, pages, support, text};
use crate::domain::{MessageId, MessageRecord, now_ms};
use crate::operators::Role;
use crate::services::Services;

/// The message `id` names (the 32-hex id or a Message-ID, with or without `<>`).
async fn find(
    services: &Services,
    user: &ConsoleUser,
    id: &str,
) -> Result<MessageRecord, ConsoleError> {
    let query = crate::timeline::normalise_query(id);
    let ja = user.lang == Lang::Ja;
    let Some(mid) = MessageId::parse(&query) else {
        return Err(ConsoleError::BadRequest(if ja {
            format!("「{query}」はメッセージIDとして読み取れません（32桁の16進数です）。")
        } else {
            format!("{query:?} is not a message id (32 hexadecimal digits).")
        }));
    };
    services.store.message(&mid).await?.ok_or_else(|| {
        ConsoleError::BadRequest(if ja {
            format!(
                "メッセージ {mid} は見つかりません。保存期間（store.retention）を過ぎて消えたか、IDが違います。"
            )
        } else {
            format!(
                "There is no message {mid}: it is older than the store's retention, or the id is wrong."
            )
        })
    })
}

/// `GET /support/message/{id}`.
pub async fn view(
    State(services): State<Services>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Support)?;
    let record = find(&services, &user, &id).await?;
    crate::audit::record(
        &services.store,
        &user.who(),
        "message view",
        &record.id.to_string(),
    )
    .await?;
    services.store.flush().await?;
    let (lang, tz) = (user.lang, user.tz);
    let view = crate::timeline::MessageView::new(record.clone());
    let headers: Vec<serde_json::Value> = record
        .headers
        .as_deref()
        .map(unfolded)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let data = json!({
        "id": view.message_id,
        "message_id_header": view.message_id_header,
        "to": view.to,
        "subject": view.subject,
        "template": view.template,
        "locale": view.locale,
        "status": view.status,
        "status_text": text::status(lang, &view.status),
        "sentence": sentence::for_message(&view, lang, tz, now_ms()),
        "created": sentence::stamp(view.created_ms, tz),
        "expires": sentence::stamp(view.expires_ms, tz),
        "attempts": view.attempts,
        "flow_id": view.flow_id,
        "headers": headers,
        "events": support::timeline_rows(&view.events, lang, tz),
    });
    Ok(pages::respond(pages::render(
        "message",
        &pages::for_user(&user, "message", data),
    )))
}

/// `GET /support/message/{id}/headers.txt`: the header block as signed, as text.
pub async fn headers(
    State(services): State<Services>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Support)?;
    let record = find(&services, &user, &id).await?;
    let Some(block) = record.headers.clone() else {
        return Err(ConsoleError::BadRequest(match user.lang {
            Lang::Ja => format!(
                "メッセージ {} のヘッダーは保存されていません（ヘッダーを保存する前の版で送ったメッセージです）。",
                record.id
            ),
            Lang::En => format!(
                "Message {} has no stored headers (it was sent by a version that did not keep them).",
                record.id
            ),
        }));
    };
    crate::audit::record(
        &services.store,
        &user.who(),
        "message headers",
        &record.id.to_string(),
    )
    .await?;
    services.store.flush().await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"mailgate-{}-headers.txt\"",
                    record.id
                ),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        block,
    )
        .into_response())
}

/// The header block as (name, value) pairs, folded lines joined (RFC 5322 §2.2.3).
fn unfolded(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_string(), value.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unfolded;

    #[test]
    fn folded_header_lines_join_their_field() {
        let block = "Subject: =?utf-8?B?x?=\r\nDKIM-Signature: v=1;\r\n\tb=abc\r\nTo: a@b.jp\r\n";
        assert_eq!(
            unfolded(block),
            vec![
                ("Subject".to_string(), "=?utf-8?B?x?=".to_string()),
                ("DKIM-Signature".to_string(), "v=1; b=abc".to_string()),
                ("To".to_string(), "a@b.jp".to_string()),
            ]
        );
    }
}
