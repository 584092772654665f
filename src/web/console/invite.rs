//! `/admin/invite`: an admin's explicit invitation of an address mailgate has never
//! seen. Support's "send a new link" is not offered for such an address (a mistyped
//! address would get an account-setup mail), so the support page links admins here,
//! and the invitation goes out only after a confirmation page: a GET shows what will
//! happen and changes nothing; the POST must carry `confirm=yes`. Audited either way.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::sentence::Lang;
use super::session::ConsoleUser;
use super::{ConsoleError, InviteRefusal, pages};
use crate::domain::Address;
use crate::operators::Role;
use crate::services::Services;

#[derive(Debug, Deserialize)]
pub struct InviteQuery {
    #[serde(default)]
    address: String,
}

/// The address from a form or query, NFKC-normalised like a search; a wrong one is a
/// 400 in the operator's language.
fn address_of(user: &ConsoleUser, raw: &str) -> Result<Address, ConsoleError> {
    let typed = crate::timeline::normalise_query(raw);
    Address::parse(&typed).map_err(|e| {
        ConsoleError::BadRequest(match user.lang {
            Lang::Ja => format!("「{typed}」はメールアドレスとして読み取れません（{e}）。"),
            Lang::En => format!("{typed:?} is not an address: {e}"),
        })
    })
}

/// What the page says when no invitation can go out.
fn refusal_text(lang: Lang, refusal: &InviteRefusal) -> String {
    match (refusal, lang) {
        (InviteRefusal::Known, Lang::Ja) => "このアドレスにはアカウントか過去のリンクがあるため、招待は送りません。配信ログの「新しいリンクを再送」を使ってください（アカウントがあればパスワード再設定のリンクになります）。".into(),
        (InviteRefusal::Known, Lang::En) => "This address has an account or an earlier link, so no invitation is sent; use \"Send a new link\" on its delivery log (it sends a password reset link when there is an account).".into(),
        (InviteRefusal::Refused(e), Lang::Ja) => format!("招待は送っていません：{}。", e.text(lang)),
        (InviteRefusal::Refused(e), Lang::En) => format!("No invitation was sent: {e}."),
    }
}

fn page(
    user: &ConsoleUser,
    address: &Address,
    refusal: Option<String>,
    flash: Option<String>,
) -> Response {
    pages::respond(pages::render(
        "invite",
        &pages::for_user(
            user,
            "invite",
            json!({
                "address": address.to_string(),
                "refusal": refusal,
                "flash": flash,
            }),
        ),
    ))
}

/// `GET /admin/invite?address=…`: the confirmation page (sends nothing).
pub async fn confirm(
    State(services): State<Services>,
    user: ConsoleUser,
    Query(q): Query<InviteQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let address = address_of(&user, &q.address)?;
    let refusal = super::invite_refusal(&services, &address, user.tz)
        .await?
        .map(|r| refusal_text(user.lang, &r));
    Ok(page(&user, &address, refusal, None))
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    /// `yes` from the confirmation page's button; anything else sends nothing.
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/invite`: sends the invitation confirmed on the page.
pub async fn send(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<InviteForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let address = address_of(&user, &form.address)?;
    if form.confirm != "yes" {
        return Err(ConsoleError::BadRequest(match user.lang {
            Lang::Ja => "招待は確認画面の「招待メールを送る」ボタンからだけ送れます。".into(),
            Lang::En => "An invitation is sent only from the confirmation page's button.".into(),
        }));
    }
    let result = super::invite_link(&services, &address, &user.operator.name, user.tz).await;
    if let Err(InviteRefusal::Refused(super::ResendError::Store(e))) = result {
        return Err(e.into());
    }
    let note = match &result {
        Ok(flow) => crate::audit::AuditNote::Sent {
            flow: Some(flow.clone()),
        },
        Err(InviteRefusal::Known) => crate::audit::AuditNote::NotSent {
            why: crate::audit::Refusal::Known,
        },
        Err(InviteRefusal::Refused(e)) => crate::audit::AuditNote::NotSent { why: e.refusal() },
    };
    crate::audit::record_note(
        &services.store,
        &user.who(),
        "invite",
        &address.to_string(),
        note,
    )
    .await?;
    services.store.flush().await?;
    Ok(match result {
        Ok(flow) => {
            let flash = match user.lang {
                Lang::Ja => format!(
                    "{address}への招待メールを送信待ちに入れました（手続き {flow}）。配信の状況は配信ログで確認できます。"
                ),
                Lang::En => format!(
                    "An invitation to {address} was queued (flow {flow}); its delivery shows in the delivery log."
                ),
            };
            page(&user, &address, None, Some(flash))
        }
        Err(refusal) => page(
            &user,
            &address,
            Some(refusal_text(user.lang, &refusal)),
            None,
        ),
    })
}
