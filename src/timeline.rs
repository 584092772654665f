//! The delivery log: for an address or a message, every message with its full timeline,
//! newest first. One shape serves `mailgate log`, the API and the support console, so
//! support, scripts and the application all read the same facts.
//!
//! The one forgiving search ([`search`]) lives here too, for the same reason: the
//! console, `mailgate log` and `GET /api/v1/log` all normalise what was typed the same
//! way, find the exact match first, offer case-insensitive "did you mean" addresses
//! when there is none, and list the addresses a domain or prefix matches (bounded, from
//! the store's index).

use serde::{Deserialize, Serialize};

use crate::domain::{Address, Event, MessageId, MessageRecord};
use crate::store::{Store, StoreError};

/// One message and its timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageView {
    pub message_id: String,
    pub message_id_header: String,
    pub to: String,
    pub template: String,
    pub locale: String,
    pub subject: String,
    pub status: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub attempts: u32,
    pub next_try_ms: Option<u64>,
    pub last_reply: Option<String>,
    pub flow_id: Option<String>,
    pub events: Vec<Event>,
}

impl MessageView {
    pub fn new(record: MessageRecord) -> MessageView {
        MessageView {
            message_id: record.id.to_string(),
            message_id_header: record.message_id_header,
            to: record.to.to_string(),
            template: record.template,
            locale: record.locale,
            subject: record.subject,
            status: record.status.as_str().to_string(),
            created_ms: record.created_ms,
            expires_ms: record.expires_ms,
            attempts: record.attempts,
            next_try_ms: record.due_ms.filter(|_| record.status.is_open()),
            last_reply: record.last_reply,
            flow_id: record.flow_id,
            events: record.timeline,
        }
    }
}

/// The answer to a log query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogView {
    /// What was asked for, normalised.
    pub query: String,
    pub messages: Vec<MessageView>,
    /// `domain` or `prefix` when the query was a partial address: then `matches` lists
    /// the addresses, and `messages` is empty.
    #[serde(default)]
    pub pattern: Option<PatternKind>,
    /// The addresses with mail that a domain or prefix matches, in byte order, at most
    /// [`MATCHES_SHOWN`].
    #[serde(default)]
    pub matches: Vec<String>,
    /// True when more addresses match than `matches` lists: type more to narrow.
    #[serde(default)]
    pub more_matches: bool,
    /// When an address had no mail: addresses that differ from it only in case, or
    /// that begin with it (a domain typed short), at most [`SUGGESTIONS_SHOWN`].
    #[serde(default)]
    pub did_you_mean: Vec<String>,
}

impl LogView {
    fn found(query: String, messages: Vec<MessageView>) -> LogView {
        LogView {
            query,
            messages,
            pattern: None,
            matches: Vec::new(),
            more_matches: false,
            did_you_mean: Vec::new(),
        }
    }

    /// The pattern a listing answered (`None` for an address or a message id).
    pub fn address_pattern(&self) -> Option<crate::domain::AddressPattern> {
        self.pattern
            .and_then(|_| crate::domain::AddressPattern::parse(&self.query))
    }
}

/// Which kind of partial address a listing answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    /// `@example.jp`: the addresses at exactly that domain.
    Domain,
    /// `hanako@`, `hana`: the addresses that begin so.
    Prefix,
}

/// The most addresses a domain or prefix search lists (one more is read to know that
/// there are more).
pub const MATCHES_SHOWN: usize = 50;

/// The most "did you mean" addresses offered.
pub const SUGGESTIONS_SHOWN: usize = 10;

/// Reads one message's view.
pub async fn message_view(
    store: &Store,
    id: &MessageId,
) -> Result<Option<MessageView>, StoreError> {
    let Some(record) = store.message(id).await? else {
        return Ok(None);
    };
    Ok(Some(MessageView::new(record)))
}

/// Why a lookup found no answer.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The query is the asker's mistake.
    #[error("{query:?} is neither an address nor a message id: {reason}")]
    NotAQuery {
        query: String,
        reason: crate::domain::AddressError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a person typed, as a query: NFKC (a full-width `ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ`
/// from a Japanese input method becomes `hanako@example.jp`) and trimmed, spaces of
/// any width included.
pub fn normalise_query(query: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    query.nfkc().collect::<String>().trim().to_string()
}

/// Looks up an address (every message to it, via the index) or a message id (the
/// 32-hex id or the Message-ID header value, with or without `<>`). The query is
/// normalised first ([`normalise_query`]).
pub async fn lookup(store: &Store, query: &str) -> Result<LogView, LookupError> {
    let normalised = normalise_query(query);
    let q = without_header_name(&normalised);
    if let Some(id) = MessageId::parse(q)
        .filter(|_| !q.contains('@') || q.starts_with('<') || looks_like_header_id(q))
    {
        let messages = message_view(store, &id).await?.into_iter().collect();
        return Ok(LogView::found(id.to_string(), messages));
    }
    let address = Address::parse(q).map_err(|reason| LookupError::NotAQuery {
        query: q.to_string(),
        reason,
    })?;
    let ids = store.messages_for_address(&address.to_string()).await?;
    let mut messages = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(v) = message_view(store, &id).await? {
            messages.push(v);
        }
    }
    Ok(LogView::found(address.to_string(), messages))
}

/// The forgiving search that support, `mailgate log` and the API share: a domain or
/// an address prefix ([`address_pattern`]) lists the matching addresses; anything else
/// is [`lookup`], and an address with no mail offers the addresses that differ only in
/// case or begin with it. Every read is bounded (index ranges, [`MATCHES_SHOWN`],
/// [`SUGGESTIONS_SHOWN`]).
pub async fn search(store: &Store, query: &str) -> Result<LogView, LookupError> {
    use crate::domain::AddressPattern;
    if let Some(pattern) = address_pattern(query) {
        let mut found = store
            .addresses_matching(&pattern, MATCHES_SHOWN + 1)
            .await?;
        let more = found.len() > MATCHES_SHOWN;
        found.truncate(MATCHES_SHOWN);
        let mut view = LogView::found(pattern.to_string(), Vec::new());
        view.pattern = Some(match pattern {
            AddressPattern::Domain(_) => PatternKind::Domain,
            AddressPattern::Prefix(_) => PatternKind::Prefix,
        });
        view.matches = found;
        view.more_matches = more;
        return Ok(view);
    }
    let mut view = lookup(store, query).await?;
    if view.messages.is_empty()
        && let Ok(a) = Address::parse(&view.query)
    {
        let a = a.to_string();
        let mut like = store.addresses_like(&a, SUGGESTIONS_SHOWN).await?;
        // A domain typed short (`hanako@example.j`): addresses that begin so.
        let begins = AddressPattern::Prefix(a.clone());
        for other in store.addresses_matching(&begins, SUGGESTIONS_SHOWN).await? {
            if other != a && !like.contains(&other) && like.len() < SUGGESTIONS_SHOWN {
                like.push(other);
            }
        }
        view.did_you_mean = like;
    }
    Ok(view)
}

/// A partial address to list matches for (`@example.jp`, `hanako@`, `hana`), unless
/// the query is a message id (which [`lookup`] finds) or a whole address.
pub fn address_pattern(query: &str) -> Option<crate::domain::AddressPattern> {
    let q = normalise_query(query);
    if MessageId::parse(without_header_name(&q)).is_some() {
        return None;
    }
    crate::domain::AddressPattern::parse(&q)
}

/// A Message-ID pasted with its header name (`Message-ID: <…>`) is the id alone.
fn without_header_name(q: &str) -> &str {
    match q.get(..11) {
        Some(name) if name.eq_ignore_ascii_case("message-id:") => q[11..].trim(),
        _ => q,
    }
}

/// `hex@host` where hex is 32 digits: a Message-ID header, not an address.
fn looks_like_header_id(q: &str) -> bool {
    q.split('@')
        .next()
        .is_some_and(|l| l.len() == 32 && l.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AddressPattern;

    #[test]
    fn a_message_id_in_any_dress_is_not_an_address_pattern() {
        let hex = "0123456789abcdef0123456789abcdef";
        for q in [
            hex.to_string(),
            format!("<{hex}>"),
            format!("{hex}@mail.example.jp"),
            format!("<{hex}@mail.example.jp>"),
            format!("Message-ID: <{hex}@mail.example.jp>"),
            format!("message-id:{hex}@mail.example.jp"),
        ] {
            assert_eq!(address_pattern(&q), None, "{q}");
            assert_eq!(
                MessageId::parse(without_header_name(&normalise_query(&q))).map(|m| m.to_string()),
                Some(hex.to_string()),
                "{q}"
            );
        }
        assert_eq!(
            address_pattern("　＠ｅｘａｍｐｌｅ．ｊｐ "),
            Some(AddressPattern::Domain("example.jp".into()))
        );
        assert_eq!(
            address_pattern("hana"),
            Some(AddressPattern::Prefix("hana".into()))
        );
        assert_eq!(address_pattern("hanako@example.jp"), None);
    }

    #[test]
    fn an_answer_from_a_server_without_the_search_fields_still_reads() {
        // `mailgate log` through the socket of a server from before the forgiving search.
        let old: LogView =
            serde_json::from_str(r#"{"query": "hanako@example.jp", "messages": []}"#).unwrap();
        assert_eq!(old.pattern, None);
        assert!(old.matches.is_empty() && old.did_you_mean.is_empty() && !old.more_matches);
        // And a listing says which pattern it answered.
        let listing: LogView = serde_json::from_value(serde_json::json!({
            "query": "@example.jp", "messages": [], "pattern": "domain",
            "matches": ["hanako@example.jp"], "more_matches": false, "did_you_mean": [],
        }))
        .unwrap();
        assert_eq!(
            listing.address_pattern(),
            Some(AddressPattern::Domain("example.jp".into()))
        );
    }
}
