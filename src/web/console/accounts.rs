//! Accounts that can be revoked, in the console: `/account` shows an operator's own
//! live sessions and ends them all ("log out everywhere"); `/admin/operators` lets an
//! admin disable, enable, remove, re-role or re-password an operator. The changes are
//! those of `mailgate operator …` (both call [`crate::operators`]), so both ways end
//! the same sessions and write the same audit entries.

use axum::Form;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::sentence::{Lang, stamp};
use super::session::{ConsoleUser, SESSION_COOKIE, set_cookie};
use super::text;
use super::{ConsoleError, pages};
use crate::domain::now_ms;
use crate::operators::{self, OperatorError, Role};
use crate::services::Services;

fn op_error(e: OperatorError) -> ConsoleError {
    match e {
        OperatorError::Store(s) => ConsoleError::Store(s),
        other => ConsoleError::BadRequest(other.to_string()),
    }
}

/// `GET /account`: this operator's live sessions, and the language and zone form.
pub async fn own_sessions(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    account_page(&services, &user, None).await
}

async fn account_page(
    services: &Services,
    user: &ConsoleUser,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let (lang, tz) = (user.lang, user.tz);
    let prefs = operators::preferences(&services.store, &user.operator.name).await?;
    let current = operators::session_id(&user.token);
    let ja = lang == Lang::Ja;
    let saved_lang = prefs.lang.as_deref().unwrap_or("");
    let langs: Vec<Value> = [
        (
            "",
            if ja {
                "ブラウザの設定に従う"
            } else {
                "As the browser asks"
            },
        ),
        ("ja", "日本語"),
        ("en", "English"),
    ]
    .iter()
    .map(|(v, l)| json!({"value": v, "label": l, "selected": *v == saved_lang}))
    .collect();
    let saved_zone = prefs.timezone.as_deref().unwrap_or("");
    let mut zones: Vec<Value> = vec![json!({
        "value": "",
        "label": if ja {
            "表示言語に合わせる（日本語なら日本時間）"
        } else {
            "By the language (Japanese: Japan time)"
        },
        "selected": saved_zone.is_empty(),
    })];
    let configured = [
        services.config.flows.timezone_ja.name(),
        services.config.flows.timezone_en.name(),
    ];
    let mut names: Vec<&str> = text::ZONES.to_vec();
    for z in configured.into_iter().chain(Some(saved_zone)) {
        if !z.is_empty() && !names.contains(&z) {
            names.push(z);
        }
    }
    zones.extend(
        names
            .into_iter()
            .map(|z| json!({"value": z, "label": z, "selected": z == saved_zone})),
    );
    let rows: Vec<Value> = operators::sessions_of(&services.store, &user.operator.name, now_ms())
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id, "created": stamp(s.created_ms, tz), "expires": stamp(s.expires_ms, tz),
                "current": s.id == current,
            })
        })
        .collect();
    Ok(pages::respond(pages::render(
        "account",
        &pages::for_user(
            user,
            "account",
            json!({ "rows": rows, "langs": langs, "zones": zones, "flash": flash }),
        ),
    )))
}

#[derive(Debug, Deserialize)]
pub struct PreferencesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    timezone: String,
    /// Set by the header's language buttons: the zone stays as saved.
    #[serde(default)]
    keep_zone: Option<String>,
    /// Where to go afterwards: a path on this console.
    #[serde(default)]
    back: String,
}

/// `POST /account/preferences`: saves the operator's language (the header's switch and
/// the `/account` form) and time zone, then goes back to the page it came from, now in
/// that language. Ends no session.
pub async fn save_preferences(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<PreferencesForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let lang = match form.lang.as_str() {
        "" => None,
        l @ ("ja" | "en") => Some(l.to_string()),
        other => {
            return Err(ConsoleError::BadRequest(match user.lang {
                Lang::Ja => format!("表示言語「{other}」は選べません（ja か en）。"),
                Lang::En => format!("unknown language {other:?} (ja or en)"),
            }));
        }
    };
    let saved = operators::preferences(&services.store, &user.operator.name).await?;
    let timezone = if form.keep_zone.is_some() {
        saved.timezone
    } else {
        match form.timezone.trim() {
            "" => None,
            z => match z.parse::<chrono_tz::Tz>() {
                Ok(tz) => Some(tz.name().to_string()),
                Err(_) => {
                    return Err(ConsoleError::BadRequest(match user.lang {
                        Lang::Ja => {
                            format!("「{z}」はタイムゾーンの名前ではありません（例：Asia/Tokyo）。")
                        }
                        Lang::En => format!("{z:?} is not a time zone name (such as Asia/Tokyo)"),
                    }));
                }
            },
        }
    };
    let prefs = operators::Preferences { lang, timezone };
    operators::set_preferences(&services.store, &user.operator.name, &prefs).await?;
    crate::audit::record(
        &services.store,
        &user.who(),
        "preferences",
        &format!(
            "lang {}, zone {}",
            prefs.lang.as_deref().unwrap_or("browser"),
            prefs.timezone.as_deref().unwrap_or("by language")
        ),
    )
    .await?;
    services.store.flush().await?;
    Ok(Redirect::to(&local_path(&form.back)).into_response())
}

/// `back` when it is a path on this server without a `lang=` (which would override
/// the choice just saved), else `/account`. Never a URL to elsewhere.
fn local_path(back: &str) -> String {
    if !back.starts_with('/') || back.starts_with("//") || back.contains('\\') {
        return "/account".into();
    }
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /account/logout-everywhere`: ends every session of this operator, this one
/// too, and goes to the login page.
pub async fn log_out_everywhere(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    operators::log_out_everywhere(&services.store, &user.operator.name)
        .await
        .map_err(op_error)?;
    crate::audit::record(&services.store, &user.who(), "logout everywhere", "").await?;
    services.store.flush().await?;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(&services, SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn operators_page(
    services: &Services,
    user: &ConsoleUser,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let (lang, tz) = (user.lang, user.tz);
    let rows: Vec<Value> = operators::list(&services.store, now_ms())
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "name": r.name, "role": r.role.as_str(), "disabled": r.disabled,
                "role_text": text::role(lang, r.role.as_str()),
                "state": text::status(lang, if r.disabled { "disabled" } else { "enabled" }),
                "sessions": r.sessions, "created": stamp(r.created_ms, tz),
            })
        })
        .collect();
    Ok(pages::respond(pages::render(
        "operators",
        &pages::for_user(user, "operators", json!({ "rows": rows, "flash": flash })),
    )))
}

/// `GET /admin/operators`.
pub async fn operators(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    operators_page(&services, &user, None).await
}

#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/operators/change`: `action` is disable, enable, remove, role or
/// passwd. An admin may not disable or remove themself here (the console would lock
/// its last admin out); the command line can.
pub async fn operator_change(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<ChangeForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let name = form.name.trim();
    let store = &services.store;
    let flash = match form.action.as_str() {
        "disable" | "remove" if name == user.operator.name => {
            said(user.lang, Said::NotSelf(&form.action), name)
        }
        "disable" | "enable" | "remove" => {
            let change: operators::Change = form
                .action
                .parse()
                .map_err(|e: operators::OperatorError| ConsoleError::BadRequest(e.to_string()))?;
            match operators::apply(store, name, change).await {
                Ok(text) => {
                    crate::audit::record(
                        store,
                        &user.who(),
                        &format!("operator {}", change.as_str()),
                        name,
                    )
                    .await?;
                    match user.lang {
                        Lang::Ja => said(user.lang, Said::Done(change.as_str()), name),
                        Lang::En => text,
                    }
                }
                Err(OperatorError::Store(e)) => return Err(ConsoleError::Store(e)),
                Err(e) => said(user.lang, Said::Nothing(&e.to_string()), name),
            }
        }
        "role" => {
            let role: Role = form
                .role
                .parse()
                .map_err(|e: OperatorError| ConsoleError::BadRequest(e.to_string()))?;
            operators::set_role(store, name, role)
                .await
                .map_err(op_error)?;
            crate::audit::record_note(
                store,
                &user.who(),
                "operator role",
                name,
                crate::audit::AuditNote::Role {
                    role: role.as_str().to_string(),
                },
            )
            .await?;
            said(user.lang, Said::Role(role.as_str()), name)
        }
        "passwd" => {
            let password = form.password.clone();
            let hash = tokio::task::spawn_blocking(move || operators::hash_password(&password))
                .await
                .map_err(|e| ConsoleError::Unavailable(Box::new(e)))?;
            match hash {
                Ok(hash) => {
                    operators::set_password(store, name, &hash)
                        .await
                        .map_err(op_error)?;
                    crate::audit::record(store, &user.who(), "operator passwd", name).await?;
                    said(user.lang, Said::Password, name)
                }
                Err(e) => said(user.lang, Said::Nothing(&e.to_string()), name),
            }
        }
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "unknown action {other:?}"
            )));
        }
    };
    services.store.flush().await?;
    // A change to one's own account ended this session too: to the login page.
    if operators::session(store, &user.token, now_ms())
        .await?
        .is_none()
    {
        return Ok(Redirect::to("/login").into_response());
    }
    operators_page(&services, &user, Some(flash)).await
}

/// What an operator change answers.
enum Said<'a> {
    /// An admin tried to disable or remove themself.
    NotSelf(&'a str),
    /// disable, enable or remove was done.
    Done(&'a str),
    Role(&'a str),
    Password,
    /// Refused, with the reason (in English: it comes from [`operators`]).
    Nothing(&'a str),
}

/// The banner of an operator change, in `lang`.
fn said(lang: Lang, what: Said, name: &str) -> String {
    match (lang, what) {
        (Lang::En, Said::NotSelf(a)) => format!(
            "Nothing changed: you cannot {a} your own account here; ask another admin or use mailgate operator {a} {name}."
        ),
        (Lang::Ja, Said::NotSelf(a)) => format!(
            "何も変更していません：自分のアカウントはここでは{}できません。ほかの管理者に依頼するか、mailgate operator {a} {name} を使ってください。",
            if a == "remove" { "削除" } else { "無効に" }
        ),
        (Lang::En, Said::Done(a)) => format!("operator {name}: {a} done"),
        (Lang::Ja, Said::Done("disable")) => {
            format!("担当者 {name} を無効にしました。ログインはすべて終了しています。")
        }
        (Lang::Ja, Said::Done("enable")) => {
            format!("担当者 {name} を有効にしました。再びログインできます。")
        }
        (Lang::Ja, Said::Done(_)) => {
            format!("担当者 {name} を削除しました。ログインはすべて終了しています。")
        }
        (Lang::En, Said::Role(r)) => {
            format!("operator {name} now has the role {r}; every session of it has ended")
        }
        (Lang::Ja, Said::Role(r)) => format!(
            "担当者 {name} の権限を「{}」にしました。ログインはすべて終了しています。",
            text::role(lang, r)
        ),
        (Lang::En, Said::Password) => {
            format!("operator {name} has a new password; every session of it has ended")
        }
        (Lang::Ja, Said::Password) => {
            format!("担当者 {name} のパスワードを変更しました。ログインはすべて終了しています。")
        }
        (Lang::En, Said::Nothing(e)) => format!("Nothing changed: {e}."),
        (Lang::Ja, Said::Nothing(e)) => format!("何も変更していません（{e}）。"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn going_back_stays_on_this_server_and_drops_the_language_override() {
        assert_eq!(
            local_path("/support?q=a%2Bb%40x.jp&lang=en"),
            "/support?q=a%2Bb%40x.jp"
        );
        assert_eq!(local_path("/admin?lang=ja"), "/admin");
        assert_eq!(local_path("//evil.example/"), "/account");
        assert_eq!(local_path("https://evil.example/"), "/account");
        assert_eq!(local_path("/\\evil.example"), "/account");
    }
}
