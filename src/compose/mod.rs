//! Composing a message: template → MIME bytes. Everything that decides what a message
//! says happens here, once, at enqueue; the queue then stores and sends those exact
//! bytes, so a retry sends the same signed message.

pub mod lint;
pub mod templates;
mod transfer;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::domain::{Address, Mailbox, MessageId};
pub use templates::{Rendered, TemplateError, Templates};

/// Why a message could not be composed. Each says which input is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{field} contains a line break, which would start a new mail header")]
    HeaderInjection { field: String },
    #[error("vars must be a JSON object of names to values")]
    VarsNotObject,
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// A composed (not yet signed) message.
#[derive(Debug, Clone)]
pub struct Composed {
    pub subject: String,
    /// The full RFC 5322 message, CRLF line endings.
    pub raw: Vec<u8>,
}

/// What to compose: recipient, template and its variables.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    pub to: &'a Address,
    pub to_name: Option<&'a str>,
    pub template: &'a str,
    pub locale: &'a str,
    pub vars: Value,
}

/// What composing needs from the configuration: the template folder and who sends.
#[derive(Debug, Clone)]
pub struct ComposeSettings {
    /// Files here replace the built-in templates of the same name.
    pub templates_dir: Option<std::path::PathBuf>,
    pub from: Mailbox,
    /// The host name under which Message-IDs are made.
    pub hostname: String,
    pub organization: String,
    pub contact: String,
    /// The base of every link in mail.
    pub public_url: String,
}

impl ComposeSettings {
    /// The settings from a loaded configuration.
    pub fn from_config(config: &Config) -> ComposeSettings {
        ComposeSettings {
            templates_dir: config.templates.dir.clone(),
            from: config.sender.from.clone(),
            hostname: config.sender.hostname.clone(),
            organization: config.sender.organization.clone(),
            contact: config.sender.contact.clone(),
            public_url: config.server.public_url.clone(),
        }
    }
}

/// Turns templates and variables into messages from the configured sender.
#[derive(Debug)]
pub struct Composer {
    templates: Templates,
    from: Mailbox,
    hostname: String,
    organization: String,
    contact: String,
    public_url: String,
}

impl Composer {
    /// Builds the composer; template problems are all returned.
    pub fn new(settings: ComposeSettings) -> Result<Composer, Vec<TemplateError>> {
        Ok(Composer {
            templates: Templates::load(settings.templates_dir.as_deref())?,
            from: settings.from,
            hostname: settings.hostname,
            organization: settings.organization,
            contact: settings.contact,
            public_url: settings.public_url,
        })
    }

    /// The templates, for `check` and the API's validation.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The Message-ID header value (without brackets) of message `id`.
    pub fn message_id_header(&self, id: &MessageId) -> String {
        format!("{id}@{}", self.hostname)
    }

    /// The variables every template may use besides the caller's.
    fn with_globals(&self, vars: Value) -> Result<Value, ComposeError> {
        let mut map = match vars {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => return Err(ComposeError::VarsNotObject),
        };
        for (k, v) in [
            ("organization", &self.organization),
            ("contact", &self.contact),
            ("public_url", &self.public_url),
        ] {
            map.entry(k).or_insert_with(|| Value::String(v.clone()));
        }
        map.entry("name")
            .or_insert_with(|| Value::String(String::new()));
        Ok(Value::Object(map))
    }

    /// Renders `template` for `to` and builds the MIME message: multipart/alternative
    /// (text and HTML), UTF-8, RFC 2047 encoded headers, a Message-ID under
    /// `sender.hostname`, a Date, and `Auto-Submitted: auto-generated` (RFC 3834 §5).
    pub fn compose(
        &self,
        id: &MessageId,
        draft: Draft<'_>,
        now_unix: i64,
    ) -> Result<Composed, ComposeError> {
        let Draft {
            to,
            to_name,
            template,
            locale,
            vars,
        } = draft;
        let vars = self.with_globals(vars)?;
        let rendered = self.templates.render(template, locale, vars)?;
        reject_line_breaks("the rendered subject", &rendered.subject)?;
        if let Some(n) = to_name {
            reject_line_breaks("the recipient name", n)?;
        }
        let from = match &self.from.name {
            Some(n) => mail_builder::headers::address::Address::new_address(
                Some(n.clone()),
                self.from.address.to_string(),
            ),
            None => mail_builder::headers::address::Address::new_address(
                None::<String>,
                self.from.address.to_string(),
            ),
        };
        let to_header = mail_builder::headers::address::Address::new_address(
            to_name.filter(|n| !n.trim().is_empty()).map(str::to_string),
            to.to_string(),
        );
        let raw = MessageBuilder::new()
            .from(from)
            .to(to_header)
            .subject(rendered.subject.clone())
            .date(now_unix)
            .message_id(self.message_id_header(id))
            .header("Auto-Submitted", Raw::new("auto-generated"))
            .header("Content-Language", Raw::new(locale.to_string()))
            .body(MimePart::new(
                "multipart/alternative",
                vec![
                    text_part("text/plain", &rendered.text),
                    text_part("text/html", &rendered.html),
                ],
            ))
            .write_to_vec()
            .map_err(|e| ComposeError::Build(e.to_string()))?;
        Ok(Composed {
            subject: rendered.subject,
            raw,
        })
    }
}

/// A UTF-8 text part, its body already transfer-encoded (see `transfer`).
fn text_part(content_type: &'static str, text: &str) -> MimePart<'static> {
    let encoded = transfer::encode_text(text);
    MimePart::new(
        ContentType::new(content_type).attribute("charset", "utf-8"),
        BodyPart::Text(encoded.body.into()),
    )
    .transfer_encoding(encoded.encoding)
}

fn reject_line_breaks(field: &str, value: &str) -> Result<(), ComposeError> {
    if value.contains(['\r', '\n']) {
        return Err(ComposeError::HeaderInjection {
            field: field.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigSources};
    use serde_json::json;

    fn composer() -> Composer {
        let config = Config::from_toml_str(
            "[sender]\nfrom = \"Example Clinic <no-reply@example.jp>\"\nhostname = \"mail.example.jp\"\n",
            &ConfigSources::default(),
        )
        .unwrap();
        Composer::new(ComposeSettings::from_config(&config)).unwrap()
    }

    #[test]
    fn a_notice_is_multipart_utf8_with_the_required_headers() {
        let c = composer();
        let id = MessageId::random();
        let to = Address::parse("taro@example.jp").unwrap();
        let m = c
            .compose(
                &id,
                Draft {
                    to: &to,
                    to_name: Some("山田 太郎"),
                    template: "notice",
                    locale: "ja",
                    vars: json!({"subject": "受付時間の変更", "body": "本文です。"}),
                },
                1_700_000_000,
            )
            .unwrap();
        let text = String::from_utf8(m.raw.clone()).unwrap();
        assert!(
            text.contains(&format!("Message-ID: <{id}@mail.example.jp>")),
            "{text}"
        );
        assert!(text.contains("Date: "));
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("multipart/alternative"));
        assert!(
            text.contains("Subject: =?utf-8?"),
            "subject must be RFC 2047 encoded: {text}"
        );
        assert!(text.lines().all(|l| l.len() <= 998));
        let parsed = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
        assert_eq!(parsed.subject(), Some("受付時間の変更"));
        assert!(parsed.body_text(0).unwrap().contains("本文です。"));
    }

    #[test]
    fn a_subject_with_a_line_break_is_refused() {
        let c = composer();
        let e = c
            .compose(
                &MessageId::random(),
                Draft {
                    to: &Address::parse("a@example.jp").unwrap(),
                    to_name: None,
                    template: "notice",
                    locale: "en",
                    vars: json!({"subject": "Hi\r\nBcc: x@evil.example", "body": "b"}),
                },
                0,
            )
            .unwrap_err();
        assert!(matches!(e, ComposeError::HeaderInjection { .. }), "{e}");
    }
}
