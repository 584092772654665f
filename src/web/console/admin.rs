//! `/admin`: the bounce report for a chosen period (counts by reason, recipient domain
//! and day; undeliverable flows; an alert when receivers refuse the sender, with their
//! replies as evidence; every bounce, and its CSV), the queue (retry, cancel) and the
//! suppression list (remove, with a reason). The list and the CSV are built by the same
//! functions as `mailgate bounces`, so they hold the same rows for the same period.
//! Above the report, the last 30 days as pictures (see `charts`), read from the daily
//! tallies: a month of counters, however much mail the store holds.
//!
//! The report and the queue filter ([`ListFilter`]: reason, kind or status, recipient
//! domain) over a bounded read: the newest [`BOUNCES_READ`] bounces of the period, the
//! [`QUEUE_READ`] entries due first. Filtering in memory over a bounded read keeps every
//! page's cost fixed without an index per filter; the page says when the read was cut.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::sentence::{Lang, stamp};
use super::session::ConsoleUser;
use super::{ConsoleError, charts, pages, text};
use crate::domain::bounce::BounceRecord;
use crate::domain::now_ms;
use crate::operators::Role;
use crate::queue::control::QueueCursor;
use crate::report::{bounce_row, bounces_csv_headed};
use crate::services::Services;

/// The most bounces a page or CSV reads: the newest of the period (the page says when
/// the period held more).
pub const BOUNCES_READ: usize = 10_000;
/// The rows one queue page shows, earliest due first.
pub const QUEUE_PAGE: usize = 50;
/// The most queue entries one queue page reads looking for rows that pass its filters;
/// a filter that matches little ends the page there, with a link that goes on.
pub const QUEUE_SCAN: usize = 1_000;

/// `/admin` and its CSV: a period, and filters on what the period holds.
#[derive(Debug, Default, Deserialize)]
pub struct PeriodQuery {
    #[serde(default)]
    since: Option<String>,
    /// A reason name (`userunknown`, …).
    #[serde(default)]
    reason: Option<String>,
    /// `permanent`, `temporary` or `sender` (a sender problem).
    #[serde(default)]
    status: Option<String>,
    /// The recipient domain.
    #[serde(default)]
    domain: Option<String>,
}

/// The filters of a list, normalised (NFKC, trimmed, domain lower-case); empty ones
/// are `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ListFilter {
    pub reason: Option<String>,
    pub status: Option<String>,
    pub domain: Option<String>,
}

impl ListFilter {
    fn new(reason: &Option<String>, status: &Option<String>, domain: &Option<String>) -> Self {
        let clean = |v: &Option<String>| {
            v.as_deref()
                .map(crate::timeline::normalise_query)
                .filter(|v| !v.is_empty())
        };
        ListFilter {
            reason: clean(reason),
            status: clean(status),
            domain: clean(domain).map(|d| d.trim_start_matches('@').to_ascii_lowercase()),
        }
    }

    /// True when a bounce passes every filter.
    pub fn bounce(&self, b: &BounceRecord) -> bool {
        let reason = b.reason.as_deref().unwrap_or("");
        let status_ok = match self.status.as_deref() {
            None => true,
            Some("permanent") => b.permanent,
            Some("temporary") => !b.permanent,
            Some("sender") => b.sender_problem,
            Some(_) => false,
        };
        self.reason.as_deref().is_none_or(|r| r == reason)
            && status_ok
            && self
                .domain
                .as_deref()
                .is_none_or(|d| b.recipient_domain.as_deref() == Some(d))
    }

    /// True when a queue row passes (its status, its recipient's domain).
    pub fn queued(&self, status: &str, to: &str) -> bool {
        self.status.as_deref().is_none_or(|s| s == status)
            && self
                .domain
                .as_deref()
                .is_none_or(|d| to.rsplit_once('@').is_some_and(|(_, domain)| domain == d))
    }

    /// The filters as query parameters (`&reason=…`), for links that keep them.
    fn query(&self) -> String {
        let mut q = String::new();
        for (k, v) in [
            ("reason", &self.reason),
            ("status", &self.status),
            ("domain", &self.domain),
        ] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={}", pages::query_encode(v)));
            }
        }
        q
    }
}

/// The period asked for (default 7d), the filters, and the newest [`BOUNCES_READ`]
/// bounces in it that pass them; `true` when the period held more than was read.
async fn period(
    services: &Services,
    lang: Lang,
    q: &PeriodQuery,
) -> Result<(String, u64, ListFilter, Vec<BounceRecord>, bool), ConsoleError> {
    let since = q.since.clone().unwrap_or_else(|| "7d".into());
    let since_ms =
        crate::domain::duration::period_start(&since, now_ms()).map_err(|e| match lang {
            Lang::Ja => ConsoleError::BadRequest(format!("期間（since）を読み取れません：{e}")),
            Lang::En => ConsoleError::BadRequest(format!("since: {e}")),
        })?;
    let filter = ListFilter::new(&q.reason, &q.status, &q.domain);
    if let Some(s) = filter.status.as_deref()
        && !matches!(s, "permanent" | "temporary" | "sender")
    {
        return Err(ConsoleError::BadRequest(match lang {
            Lang::Ja => format!(
                "状態（status）「{s}」は使えません。permanent（恒久的）、temporary（一時的）、sender（送信側の問題）のどれかです。"
            ),
            Lang::En => format!("status {s:?}: use permanent, temporary or sender"),
        }));
    }
    let read = services
        .store
        .recent_bounces(since_ms, BOUNCES_READ)
        .await?;
    let more = read.len() >= BOUNCES_READ;
    let list = read.into_iter().filter(|b| filter.bounce(b)).collect();
    Ok((since, since_ms, filter, list, more))
}

fn counts(keys: impl Iterator<Item = String>) -> Vec<Value> {
    let mut map: BTreeMap<String, u64> = BTreeMap::new();
    for k in keys {
        *map.entry(k).or_insert(0) += 1;
    }
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter()
        .map(|(key, count)| json!({"key": key, "count": count}))
        .collect()
}

/// `GET /admin?since=7d`: the bounce report.
pub async fn report(
    State(services): State<Services>,
    user: ConsoleUser,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let (lang, tz) = (user.lang, user.tz);
    let (since, since_ms, filter, list, more) = period(&services, lang, &q).await?;
    let unknown = |s: &Option<String>| s.clone().unwrap_or_else(|| text::unknown(lang).into());
    let by_day = {
        let mut days = counts(list.iter().map(|b| {
            use chrono::TimeZone;
            tz.timestamp_millis_opt(b.at_ms as i64)
                .single()
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        }));
        days.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
        days
    };
    let sender: Vec<&BounceRecord> = list.iter().filter(|b| b.sender_problem).collect();
    let flows: Vec<Value> = list
        .iter()
        .filter(|b| b.permanent && b.flow_id.is_some())
        .map(|b| {
            json!({"flow_id": b.flow_id, "address": b.address, "reason": b.reason.as_deref().map(|r| text::reason(lang, r)), "diagnostic": b.diagnostic})
        })
        .collect();
    let audit: Vec<Value> = services
        .store
        .audit_recent(50).await?
        .into_iter()
        .map(|a| json!({"time": stamp(a.at_ms, tz), "who": text::who(lang, &a.who), "action": text::action(lang, &a.action), "target": text::audit_target(lang, &a)}))
        .collect();
    let offered = text::periods(lang);
    let mut periods: Vec<Value> = offered
        .iter()
        .map(|(v, l)| json!({"value": v, "label": l, "selected": *v == since}))
        .collect();
    if !offered.iter().any(|(v, _)| *v == since) {
        periods.push(json!({"value": since, "label": since, "selected": true}));
    }
    let pictures = pictures(&services, lang).await?;
    let statuses: Vec<Value> = text::bounce_statuses(lang)
        .iter()
        .map(|(v, l)| json!({"value": v, "label": l, "selected": filter.status.as_deref() == Some(*v)}))
        .collect();
    let data = json!({
        "pictures": pictures,
        "since": since,
        "reason": filter.reason,
        "domain": filter.domain,
        "statuses": statuses,
        "filtered": filter != ListFilter::default(),
        "status": filter.status,
        "more": more,
        "read_limit": BOUNCES_READ,
        "since_text": stamp(since_ms, tz),
        "periods": periods,
        "total": list.len(),
        "tz": tz.name(),
        "by_reason": counts(list.iter().map(|b| match &b.reason {
            Some(r) => text::reason(lang, r),
            None => unknown(&None),
        })),
        "by_domain": counts(list.iter().map(|b| unknown(&b.recipient_domain))),
        "by_day": by_day,
        "sender_alert": !sender.is_empty(),
        "sender_count": sender.len(),
        "sender_evidence": sender.iter().map(|b| json!({
            "time": stamp(b.at_ms, tz), "domain": b.recipient_domain,
            "reason": b.reason.as_deref().map(|r| text::reason(lang, r)),
            "diagnostic": b.diagnostic,
        })).collect::<Vec<_>>(),
        "flows": flows,
        "columns": text::bounce_columns(lang),
        "rows": list.iter().map(|b| table_row(b, lang, tz)).collect::<Vec<_>>(),
        "audit": audit,
    });
    Ok(pages::respond(pages::render(
        "admin",
        &pages::for_user(&user, "admin", data),
    )))
}

/// How many days the pictures show.
const CHART_DAYS: u32 = 30;

/// The last [`CHART_DAYS`] days in the service's zone, as the two charts and the
/// tables beside them.
async fn pictures(services: &Services, lang: Lang) -> Result<Value, ConsoleError> {
    use crate::domain::tally::{self, DayOutcome, Window};
    let zone = services.config.flows.home_zone();
    let days = tally::last_days(now_ms(), zone, CHART_DAYS);
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Ok(Value::Null);
    };
    let end = tally::next_day(last);
    let store = &services.store;
    let by_day = store.counters_between(tally::DAY_KIND, first, &end).await?;
    let by_provider = store
        .counters_between(tally::DAY_PROVIDER_KIND, first, &end)
        .await?;
    let window = Window::from_counters(&days, &by_day, &by_provider);
    let shares = charts::shares(lang, &window);
    let cells = |c: &tally::Counts| c.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    Ok(json!({
        "zone": zone.name(),
        "outcomes": DayOutcome::ALL.map(|o| charts::outcome_name(lang, o)),
        "total": window.days.iter().flat_map(|(_, c)| c.iter()).sum::<u64>(),
        "days_chart": charts::days_chart(lang, &window.days, zone.name()),
        "days": window.days.iter().rev().map(|(day, c)| json!({
            "day": day, "counts": cells(c),
        })).collect::<Vec<_>>(),
        "providers_chart": charts::providers_chart(lang, &shares),
        "providers": shares.iter().map(|s| json!({
            "id": s.id, "name": s.name, "counts": cells(&s.counts), "total": s.total,
            "percent": s.percent,
        })).collect::<Vec<_>>(),
    }))
}

/// A bounce as a row of the page's table: the CSV's cells, with the time in the
/// operator's zone as in every other table, and yes/no in the operator's language.
fn table_row(b: &BounceRecord, lang: Lang, tz: chrono_tz::Tz) -> [String; 10] {
    let mut row = bounce_row(b);
    row[0] = stamp(b.at_ms, tz);
    row[5] = text::yes_no(lang, b.permanent).into();
    row[6] = text::yes_no(lang, b.sender_problem).into();
    row
}

/// `GET /admin/bounces.csv?since=7d`: the same rows as `mailgate bounces --format csv`.
pub async fn csv(
    State(services): State<Services>,
    user: ConsoleUser,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let (since, _, filter, list, _) = period(&services, user.lang, &q).await?;
    crate::audit::record_note(
        &services.store,
        &user.who(),
        "bounces csv",
        "",
        crate::audit::AuditNote::Period {
            since: since.clone(),
            filters: filter.query(),
        },
    )
    .await?;
    services.store.flush().await?;
    let filename: String = since
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"mailgate-bounces-{filename}.csv\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        csv_text(user.lang, &list),
    )
        .into_response())
}

/// The CSV in the operator's language: a Japanese one starts with a byte-order mark,
/// without which Excel in Japan reads UTF-8 as Shift_JIS and shows garbage.
fn csv_text(lang: Lang, list: &[BounceRecord]) -> String {
    let body = bounces_csv_headed(&text::bounce_columns(lang), list);
    match lang {
        Lang::Ja => format!("\u{feff}{body}"),
        Lang::En => body,
    }
}

async fn queue_page(
    services: &Services,
    user: &ConsoleUser,
    filter: &ListFilter,
    after: Option<QueueCursor>,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let (lang, tz) = (user.lang, user.tz);
    let page = crate::queue::control::page(&services.queue, after, QUEUE_PAGE, QUEUE_SCAN, |r| {
        filter.queued(&r.status, &r.to)
    })
    .await?;
    let filters = filter.query();
    let next = page
        .next
        .map(|c| format!("/admin/queue?after={c}{filters}"));
    let first = after.map(|_| format!("/admin/queue?{}", filters.trim_start_matches('&')));
    let rows: Vec<Value> = page
        .rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "to": r.to, "status_text": text::status(lang, &r.status),
                "status": r.status, "attempts": r.attempts,
                "next_try": stamp(r.next_try_ms, tz), "expires": stamp(r.expires_ms, tz),
                "last_reply": r.last_reply.as_deref().map(|l| text::reply(lang, tz, l)),
            })
        })
        .collect();
    let statuses: Vec<Value> = ["queued", "deferred", "sending"]
        .iter()
        .map(|s| {
            json!({"value": s, "label": text::status(lang, s),
                   "selected": filter.status.as_deref() == Some(*s)})
        })
        .collect();
    let data = json!({
        "rows": rows, "flash": flash, "statuses": statuses, "domain": filter.domain,
        "filtered": filter != &ListFilter::default(), "next": next, "first": first,
        "page_size": QUEUE_PAGE,
    });
    Ok(pages::respond(pages::render(
        "queue",
        &pages::for_user(user, "queue", data),
    )))
}

/// `/admin/queue`'s filters.
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    /// Where the page starts: after this entry (`DUE-ID`, from the previous page's
    /// link).
    #[serde(default)]
    after: Option<String>,
}

/// `GET /admin/queue?status=deferred&domain=example.jp[&after=DUE-ID]`: one page.
pub async fn queue(
    State(services): State<Services>,
    user: ConsoleUser,
    Query(q): Query<QueueQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let filter = ListFilter::new(&None, &q.status, &q.domain);
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(QueueCursor::parse(a).ok_or_else(|| {
            ConsoleError::BadRequest(match user.lang {
                Lang::Ja => format!(
                    "ページの位置「{a}」が読み取れません。送信待ちの最初のページから開き直してください。"
                ),
                Lang::En => format!(
                    "the page position {a:?} cannot be read; open the queue from its first page"
                ),
            })
        })?),
    };
    queue_page(&services, &user, &filter, after, None).await
}

#[derive(Debug, Deserialize)]
pub struct IdForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

async fn queue_action(
    services: Services,
    user: ConsoleUser,
    form: IdForm,
    action: &str,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let who = user.who();
    let result = match action {
        "retry" => crate::queue::control::retry(&services.queue, &form.id, &who).await,
        _ => crate::queue::control::cancel(&services.queue, &form.id, &who).await,
    };
    let ja = user.lang == Lang::Ja;
    let flash = match result {
        Ok(_) if ja && action == "retry" => format!("メッセージ {} をすぐに再送します。", form.id),
        Ok(_) if ja => format!("メッセージ {} の送信を取り消しました。", form.id),
        Ok(ref text) => text.clone(),
        Err(e) if e.is_store() => {
            return Err(ConsoleError::Unavailable(Box::new(e)));
        }
        Err(ref e) if ja => format!("何も変更していません：{e}"),
        Err(ref e) => format!("Nothing done: {e}"),
    };
    if result.is_ok() {
        crate::audit::record(&services.store, &who, &format!("queue {action}"), &form.id).await?;
    }
    services.store.flush().await?;
    queue_page(&services, &user, &ListFilter::default(), None, Some(flash)).await
}

/// `POST /admin/queue/retry`.
pub async fn queue_retry(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<IdForm>,
) -> Result<Response, ConsoleError> {
    queue_action(services, user, form, "retry").await
}

/// `POST /admin/queue/cancel`.
pub async fn queue_cancel(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<IdForm>,
) -> Result<Response, ConsoleError> {
    queue_action(services, user, form, "cancel").await
}

async fn suppression_page(
    services: &Services,
    user: &ConsoleUser,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let tz = user.tz;
    let rows: Vec<Value> = services
        .store
        .suppressions().await?
        .into_iter()
        .map(|s| {
            json!({"address": s.address, "since": stamp(s.since_ms, tz), "reason": text::reason(user.lang, &s.reason), "evidence": s.evidence})
        })
        .collect();
    Ok(pages::respond(pages::render(
        "suppression",
        &pages::for_user(user, "suppression", json!({"rows": rows, "flash": flash})),
    )))
}

/// `GET /admin/suppression`.
pub async fn suppression(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    suppression_page(&services, &user, None).await
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/suppression/remove`: needs a reason, which the audit log keeps.
pub async fn suppression_remove(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<RemoveForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let reason = form.reason.trim();
    let ja = user.lang == Lang::Ja;
    if reason.is_empty() {
        let why = if ja {
            "何も外していません：このアドレスを再び使ってよい理由を入力してください。"
        } else {
            "Nothing removed: say why the address may be used again."
        };
        return suppression_page(&services, &user, Some(why.into())).await;
    }
    let flash = match services
        .store
        .remove_suppression(form.address.trim(), crate::domain::now_ms())
        .await?
    {
        Some(old) => {
            crate::audit::record_note(
                &services.store,
                &user.who(),
                "suppression remove",
                &old.address,
                crate::audit::AuditNote::Unsuppressed {
                    reason: Some(reason.to_string()),
                    was: old.reason.clone(),
                },
            )
            .await?;
            services.store.flush().await?;
            if ja {
                format!("{}を送信停止リストから外しました。", old.address)
            } else {
                format!("{} removed from the suppression list.", old.address)
            }
        }
        None if ja => format!("{}は送信停止リストに載っていません。", form.address.trim()),
        None => format!("{} is not on the suppression list.", form.address.trim()),
    };
    suppression_page(&services, &user, Some(flash)).await
}
