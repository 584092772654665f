//! `/support`: the delivery log for an address (exact; the domain part
//! case-insensitive) or a message id, led by one plain sentence, then how far each of
//! its flows got ([`super::progress`]), then every message with its full timeline; and
//! "send a new link" (for an address mailgate never saw, an admin gets a link to the
//! invitation's confirmation page instead). Searches and resends are audited. The page
//! shows no token, code or password: the timeline holds none, and message bodies are
//! never read here.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::sentence::{self, Lang};
use super::session::ConsoleUser;
use super::{ConsoleError, ResendError, pages, progress, text};
use crate::domain::{Address, now_ms};
use crate::operators::Role;
use crate::services::Services;
use crate::store::{LimitKey, Rule, Take};

/// One new link per address per this many minutes.
pub const RESEND_INTERVAL_MIN: u64 = 5;
/// One resend per address per [`RESEND_INTERVAL_MIN`] minutes.
const RESEND_LIMIT: Rule = Rule {
    max: 1,
    window_ms: RESEND_INTERVAL_MIN * 60_000,
    lock_ms: RESEND_INTERVAL_MIN * 60_000,
};

/// The flows whose progress the page shows, newest first.
const FLOWS_SHOWN: usize = 5;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /support?q=…` (`&lang=ja|en` shows this view in that language).
pub async fn search(
    State(services): State<Services>,
    user: ConsoleUser,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Support)?;
    let query = crate::timeline::normalise_query(&q.q);
    if !query.is_empty() {
        crate::audit::record(&services.store, &user.who(), "search", &query).await?;
        services.store.flush().await?;
    }
    page(&services, &user, &query, None).await
}

/// Draws the page for `query` (empty: the search form alone).
async fn page(
    services: &Services,
    user: &ConsoleUser,
    query: &str,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let (lang, tz) = (user.lang, user.tz);
    let ja = lang == Lang::Ja;
    let now = now_ms();
    let mut data = json!({
        "query": query, "searched": false, "flash": flash, "error": null,
        "lead": null, "lead_status": null, "suppressed": null, "address": null,
        "no_resend": null, "did_you_mean": [], "invite": null, "flows": [],
        "messages": [], "listing": null, "matches": [],
    });
    let found = if query.is_empty() {
        None
    } else {
        Some(crate::timeline::search(&services.store, query).await)
    };
    if let Some(found) = found {
        match found {
            Err(crate::timeline::LookupError::Store(e)) => return Err(e.into()),
            Err(crate::timeline::LookupError::NotAQuery { query, reason }) => {
                data["error"] = Value::String(text::not_a_query(lang, &query, &reason))
            }
            Ok(view) if view.pattern.is_some() => {
                if let Some(pattern) = view.address_pattern() {
                    data["listing"] = json!(text::matches(
                        lang,
                        &pattern,
                        view.matches.len(),
                        view.more_matches
                    ));
                }
                data["query"] = json!(view.query);
                data["matches"] = json!(view.matches);
            }
            Ok(view) => {
                let address = Address::parse(&view.query).ok();
                let suppression = match &address {
                    Some(a) => services.store.suppression(&a.to_string()).await?,
                    None => None,
                };
                let lead =
                    sentence::lead(view.messages.first(), suppression.as_ref(), lang, tz, now);
                let lead_status = view
                    .messages
                    .first()
                    .map(|m| m.status.clone())
                    .unwrap_or_else(|| "none".into());
                let suppressed = suppression.map(|s| {
                    let since = sentence::stamp(s.since_ms, tz);
                    if ja {
                        format!(
                            "{since}から送信停止リストに載っています（理由：{}、根拠の原文：{}）。",
                            text::reason(lang, &s.reason),
                            s.evidence
                        )
                    } else {
                        format!(
                            "On the suppression list since {since} ({}: {}).",
                            s.reason, s.evidence
                        )
                    }
                });
                // The resend button needs an address: the searched one, or the
                // recipient of the message searched for.
                let resend_to = address.or_else(|| Address::parse(&view.messages.first()?.to).ok());
                // The button is offered only where a resend would send something.
                let no_resend = match &resend_to {
                    Some(a) => super::resend_refusal(services, a, tz).await?,
                    None => None,
                };
                // An address mailgate never saw: an admin may invite it, after a
                // confirmation page; support is told to ask one.
                let invite = match (&no_resend, &resend_to) {
                    (Some(ResendError::Unknown), Some(a)) if user.operator.role == Role::Admin => {
                        Some(a.to_string())
                    }
                    _ => None,
                };
                data["invite"] = json!(invite);
                let (resend_to, no_resend) = match no_resend {
                    Some(why) if ja => (
                        None,
                        Some(format!("新しいリンクは送れません：{}。", why.text(lang))),
                    ),
                    Some(why) => (None, Some(format!("No new link can be sent: {why}."))),
                    None => (resend_to.map(|a| a.to_string()), None),
                };
                let messages: Vec<Value> = view
                    .messages
                    .iter()
                    .map(|m| {
                        json!({
                            "status": m.status, "status_text": text::status(lang, &m.status),
                            "subject": m.subject, "template": m.template,
                            "locale": m.locale, "to": m.to,
                            "sentence": sentence::for_message(m, lang, tz, now),
                            "created": sentence::stamp(m.created_ms, tz),
                            "expires": sentence::stamp(m.expires_ms, tz),
                            "next_try": m.next_try_ms.map(|t| sentence::stamp(t, tz)),
                            "message_id": m.message_id,
                            "message_id_header": m.message_id_header,
                            "events": timeline_rows(&m.events, lang, tz),
                        })
                    })
                    .collect();
                data["searched"] = json!(true);
                data["query"] = json!(view.query);
                data["lead"] = json!(lead);
                data["lead_status"] = json!(lead_status);
                data["suppressed"] = json!(suppressed);
                data["address"] = json!(resend_to);
                data["no_resend"] = json!(no_resend);
                // Nothing for the exact address: those that differ only in case or
                // begin with it.
                data["did_you_mean"] = json!(view.did_you_mean);
                data["messages"] = json!(messages);
                // Each flow's progress, newest first, from the flows the messages
                // belong to.
                let mut ids: Vec<&str> = Vec::new();
                for id in view.messages.iter().filter_map(|m| m.flow_id.as_deref()) {
                    if !ids.contains(&id) && ids.len() < FLOWS_SHOWN {
                        ids.push(id);
                    }
                }
                let mut flows = Vec::new();
                for id in ids {
                    if let Some(flow) = services.store.flow(id).await? {
                        flows.push(progress::of(&flow, lang, tz, now));
                    }
                }
                data["flows"] = json!(flows);
            }
        }
    }
    Ok(pages::respond(pages::render(
        "support",
        &pages::for_user(user, "support", data),
    )))
}

/// A message's timeline as the table's rows, in the operator's language and zone.
pub(super) fn timeline_rows(
    events: &[crate::domain::Event],
    lang: Lang,
    tz: chrono_tz::Tz,
) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            json!({
                "at": sentence::stamp(e.at_ms, tz),
                "step": text::status(lang, e.step.map(|s| s.as_str()).unwrap_or("?")),
                "attempt": e.attempt,
                "server": match (&e.remote_host, &e.remote_ip) {
                    (Some(h), Some(ip)) => format!("{h} [{ip}]"),
                    (Some(h), None) => h.clone(),
                    (None, Some(ip)) => format!("[{ip}]"),
                    (None, None) => String::new(),
                },
                "reply": reply_cell(e, lang, tz),
                "tls": e.tls,
                "detail": e.detail.as_deref().map(|d| text::detail(lang, tz, d)),
            })
        })
        .collect()
}

/// The reply column: code, enhanced status and text, without repeating the code.
/// Mailgate's own words there (no server answered) are in the operator's language.
fn reply_cell(e: &crate::domain::Event, lang: Lang, tz: chrono_tz::Tz) -> String {
    let reply = e.reply.clone().unwrap_or_default();
    match e.smtp_code {
        Some(c) if !reply.starts_with(&c.to_string()) => format!("{c} {reply}").trim().to_string(),
        Some(_) => reply,
        None => text::reply(lang, tz, &reply),
    }
}

#[derive(Debug, Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
}

/// `POST /support/resend`: a new link for the address, at most once per
/// [`RESEND_INTERVAL_MIN`] minutes per address; audited whatever the outcome.
pub async fn resend(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<ResendForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Support)?;
    user.check_csrf(&form.csrf)?;
    let lang = user.lang;
    let address = Address::parse(&form.address).map_err(|e| {
        ConsoleError::BadRequest(match lang {
            Lang::Ja => format!("メールアドレスとして読み取れません（{e}）。"),
            Lang::En => e.to_string(),
        })
    })?;
    let key = address.to_string();
    // The slot is taken before the link is made, so two operators pressing at once
    // send one link; a resend that did not happen gives it back.
    let limit = LimitKey::new("support-resend", &[&key]);
    let result = match services
        .store
        .limit_take(&limit, RESEND_LIMIT, now_ms())
        .await?
    {
        Take::Refused { .. } => Err(ResendError::TooSoon {
            minutes: RESEND_INTERVAL_MIN,
        }),
        Take::Allowed { .. } => {
            let sent = super::resend_link(&services, &address, &user.operator.name, user.tz).await;
            if sent.is_err() {
                services.store.limit_refund(&limit).await?;
            }
            sent
        }
    };
    let flash = match (&result, lang) {
        (Ok(flow_id), Lang::Ja) => format!(
            "{address}に新しいリンクを送信待ちに入れました（手続き {flow_id}）。配信の状況は下の記録に出ます。"
        ),
        (Ok(flow_id), Lang::En) => format!(
            "New link sent: A new link was queued for {address} (flow {flow_id}); its delivery shows in the timeline below."
        ),
        (Err(e), Lang::Ja) => format!("新しいリンクは送っていません：{}。", e.text(lang)),
        (Err(e), Lang::En) => format!("No new link was sent: {e}."),
    };
    let note = match &result {
        Ok(flow) => crate::audit::AuditNote::Sent {
            flow: Some(flow.clone()),
        },
        Err(e) => crate::audit::AuditNote::NotSent { why: e.refusal() },
    };
    crate::audit::record_note(&services.store, &user.who(), "resend", &key, note).await?;
    services.store.flush().await?;
    page(&services, &user, &key, Some(flash)).await
}
