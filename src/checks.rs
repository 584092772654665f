//! Checks beyond what loading the configuration proves: that the DKIM keys load and
//! align, and that every template renders into a message that passes the lint
//! (`compose::lint`). `mailgate check` prints them; `serve` refuses to start on key and
//! template-loading problems (it loads the same keys and templates), while lint findings
//! are for `check` alone: a template that looks like spam still sends.

use serde_json::json;

use crate::compose::lint::lint_message;
use crate::compose::{ComposeSettings, Composer, templates::LOCALES};
use crate::config::Config;
use crate::dkim::Signers;

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Problems that stop `serve`; each names the key, file or template.
    pub problems: Vec<String>,
    /// Things that work but deserve the operator's attention.
    pub warnings: Vec<String>,
}

/// Sample values for every variable a shipped template uses.
pub fn sample_vars() -> serde_json::Value {
    json!({
        "name": "山田 太郎",
        "subject": "Clinic hours have changed",
        "body": "From December the clinic opens at nine.",
        "link": "https://id.example.jp/v/sample-token",
        "expires_local": "2026年12月1日 09:00 (日本時間)",
        "lifetime": "24時間",
        "code": "123456",
        "changed_local": "2026年12月1日 09:00 (日本時間)",
        "reset_url": "https://id.example.jp/reset",
        "app_url": "https://app.example.jp/",
    })
}

/// Runs every check.
pub fn run(config: &Config) -> Findings {
    let mut f = Findings::default();
    if config.dkim.is_empty() {
        f.warnings.push(
            "dkim: no [[dkim]] key is configured; `serve` signs with a development key under the data folder. \
             Make a real one with `mailgate dkim keygen --domain D --selector S`"
                .into(),
        );
    } else {
        match Signers::load(&config.dkim) {
            Ok(_) => f
                .warnings
                .extend(crate::dns::alignment_warnings(config, &config.dkim)),
            Err(errors) => f.problems.extend(errors.iter().map(|e| e.to_string())),
        }
    }
    match Composer::new(ComposeSettings::from_config(config)) {
        Err(errors) => f.problems.extend(errors.iter().map(|e| e.to_string())),
        Ok(composer) => {
            for name in composer.templates().names() {
                for locale in LOCALES {
                    let to =
                        crate::domain::Address::parse("sample@example.jp").expect("valid literal");
                    let draft = crate::compose::Draft {
                        to: &to,
                        to_name: Some("山田 太郎"),
                        template: name,
                        locale,
                        vars: sample_vars(),
                    };
                    let now = chrono::Utc::now().timestamp();
                    match composer.compose(&crate::domain::MessageId::random(), draft, now) {
                        Err(e) => f.problems.push(e.to_string()),
                        Ok(m) => f.problems.extend(
                            lint_message(name, locale, &m.raw)
                                .iter()
                                .map(ToString::to_string),
                        ),
                    }
                }
            }
        }
    }
    f
}
