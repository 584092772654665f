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
    #[error("{field} is {length} characters long; at most {limit} are allowed")]
    TooLong {
        field: String,
        length: usize,
        limit: usize,
    },
    #[error(
        "{field} cannot be given: mailgate sets it from its configuration, so that a notice \
         always says truly who sent it"
    )]
    Reserved { field: String },
    #[error(
        "the composed message is {size} bytes; sender.max_message_size allows {limit} \
         (shorten vars.body or other variables)"
    )]
    TooLarge { size: usize, limit: u64 },
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// Template variables mailgate sets itself from its configuration. A caller may not
/// give them: an API key holder could otherwise change what a notice says about who
/// sent it (issue 15, item 11).
pub const RESERVED: &[&str] = &["organization", "contact", "public_url"];

/// The longest recipient name, in characters: a name, not a paragraph.
pub const NAME_LIMIT: usize = 200;

/// The longest value, in characters, of a variable the caller gives. A subject longer
/// than this is not read; a body this long is a letter, not a notice.
pub fn variable_limit(name: &str) -> usize {
    match name {
        "name" => NAME_LIMIT,
        "subject" => 200,
        "body" => 50_000,
        _ => 2_000,
    }
}

/// Checks the recipient name against its limit (the API checks it before a flow is
/// stored, compose again before a message is built).
pub fn check_name(field: &str, name: &str) -> Result<(), ComposeError> {
    let length = name.chars().count();
    if length > NAME_LIMIT {
        return Err(ComposeError::TooLong {
            field: field.to_string(),
            length,
            limit: NAME_LIMIT,
        });
    }
    reject_line_breaks(field, name)
}

/// Refuses reserved names and values over their limit. A value that is not a string
/// is measured as its JSON text.
fn check_vars(vars: &Value) -> Result<(), ComposeError> {
    let Value::Object(map) = vars else {
        return Ok(());
    };
    for (k, v) in map {
        if RESERVED.contains(&k.as_str()) {
            return Err(ComposeError::Reserved {
                field: format!("vars.{k}"),
            });
        }
        let length = match v {
            Value::String(t) => t.chars().count(),
            other => other.to_string().chars().count(),
        };
        let limit = variable_limit(k);
        if length > limit {
            return Err(ComposeError::TooLong {
                field: format!("vars.{k}"),
                length,
                limit,
            });
        }
    }
    Ok(())
}

/// The `To:` header line: `"Name" <address>` when the name is plain ASCII in short
/// words, else the name as RFC 2047 encoded-words (§2: at most 75 characters each),
/// folded between words so that no line passes 78 characters (RFC 5322 §2.1.1; never
/// 998). mail-builder wrote a name as one encoded-word of any length, so a 5,000-
/// character name made a 5,020-character line.
fn to_header(name: Option<&str>, address: &str) -> String {
    let mut tokens: Vec<String> = Vec::new();
    if let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) {
        let plain = name
            .chars()
            .all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\'))
            && name.split(' ').all(|w| w.len() <= 60);
        if plain {
            // Folding white space may stand inside a quoted string (RFC 5322 §3.2.4).
            tokens = name.split(' ').map(str::to_string).collect();
            let last = tokens.len() - 1;
            tokens[0].insert(0, '"');
            tokens[last].push('"');
        } else {
            use base64::Engine;
            let mut chunk = String::new();
            let mut chunks = Vec::new();
            for c in name.chars() {
                // 45 bytes of UTF-8: 60 base64 characters, 72 with the markers.
                if chunk.len() + c.len_utf8() > 45 {
                    chunks.push(std::mem::take(&mut chunk));
                }
                chunk.push(c);
            }
            chunks.push(chunk);
            tokens = chunks
                .iter()
                .map(|w| {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(w.as_bytes());
                    format!("=?utf-8?B?{b64}?=")
                })
                .collect();
        }
    }
    tokens.push(format!("<{address}>"));
    let mut out = String::from("To:");
    let mut line = out.len();
    for t in tokens {
        if line + 1 + t.len() > 78 && line > "To:".len() {
            out.push_str("\r\n ");
            line = 1;
        } else {
            out.push(' ');
            line += 1;
        }
        out.push_str(&t);
        line += t.len();
    }
    out.push_str("\r\n");
    out
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
    /// The largest composed message, in bytes (`sender.max_message_size`).
    pub max_message_size: u64,
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
            max_message_size: config.sender.max_message_size,
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
    max_message_size: u64,
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
            max_message_size: settings.max_message_size,
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
    fn with_globals(&self, vars: Value, to_name: Option<&str>) -> Result<Value, ComposeError> {
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
        // The recipient's name greets them unless the variables name someone else.
        map.entry("name")
            .or_insert_with(|| Value::String(to_name.unwrap_or_default().to_string()));
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
        check_vars(&vars)?;
        let vars = self.with_globals(vars, to_name)?;
        let rendered = self.templates.render(template, locale, vars)?;
        reject_line_breaks("the rendered subject", &rendered.subject)?;
        if let Some(n) = to_name {
            check_name("name", n)?;
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
        // The To: line is written here, folded, rather than by mail-builder (see
        // `to_header`); the order of header fields carries no meaning (RFC 5322 §3.6).
        let mut raw = to_header(to_name, &to.to_string()).into_bytes();
        MessageBuilder::new()
            .from(from)
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
            .write_to(&mut raw)
            .map_err(|e| ComposeError::Build(e.to_string()))?;
        if raw.len() as u64 > self.max_message_size {
            return Err(ComposeError::TooLarge {
                size: raw.len(),
                limit: self.max_message_size,
            });
        }
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
    fn the_recipients_name_reaches_the_notices_greeting() {
        let c = composer();
        let to = Address::parse("taro@example.jp").unwrap();
        let greeting = |to_name: Option<&str>, locale: &str| {
            let m = c
                .compose(
                    &MessageId::random(),
                    Draft {
                        to: &to,
                        to_name,
                        template: "notice",
                        locale,
                        vars: json!({"subject": "s", "body": "b"}),
                    },
                    1_700_000_000,
                )
                .unwrap();
            let parsed = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
            parsed
                .body_text(0)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(greeting(Some("Taro Yamada"), "en"), "Dear Taro Yamada,");
        assert_eq!(greeting(None, "en"), "Hello,");
        assert_eq!(greeting(Some("山田 太郎"), "ja"), "山田 太郎 様");
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

    fn notice(c: &Composer, name: Option<&str>, vars: Value) -> Result<Composed, ComposeError> {
        c.compose(
            &MessageId::random(),
            Draft {
                to: &Address::parse("taro@example.jp").unwrap(),
                to_name: name,
                template: "notice",
                locale: "ja",
                vars,
            },
            0,
        )
    }

    #[test]
    fn a_long_name_is_encoded_in_short_words_and_folded() {
        let c = composer();
        for name in [
            "山".repeat(NAME_LIMIT),
            "Yamada ".repeat(28),
            "x".repeat(NAME_LIMIT),
            "O'Brien \"Bob\" 太郎".to_string(),
        ] {
            let m = notice(&c, Some(&name), json!({"subject": "s", "body": "b"})).unwrap();
            let text = String::from_utf8(m.raw.clone()).unwrap();
            let head = text.split("\r\n\r\n").next().unwrap();
            // RFC 5322 §2.1.1: at most 998, and 78 wherever the header can be folded.
            assert!(head.split("\r\n").all(|l| l.len() <= 78), "{head}");
            let parsed = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
            let to = parsed.to().unwrap().first().unwrap();
            assert_eq!(to.name(), Some(name.trim()), "{head}");
            assert_eq!(to.address(), Some("taro@example.jp"));
        }
    }

    #[test]
    fn variables_over_their_limit_are_refused_naming_the_field() {
        let c = composer();
        let field = |e: ComposeError| match e {
            ComposeError::TooLong { field, .. } => field,
            other => panic!("{other}"),
        };
        let name = "a".repeat(5_000);
        let e = notice(&c, Some(&name), json!({"subject": "s", "body": "b"})).unwrap_err();
        assert_eq!(field(e), "name");
        let e = notice(&c, None, json!({"subject": "s".repeat(201), "body": "b"})).unwrap_err();
        assert_eq!(field(e), "vars.subject");
        let body = "本".repeat(50_001);
        let e = notice(&c, None, json!({"subject": "s", "body": body})).unwrap_err();
        assert_eq!(field(e), "vars.body");
        let e = notice(
            &c,
            None,
            json!({"subject": "s", "body": "b", "x": vec![0; 1000]}),
        )
        .unwrap_err();
        assert_eq!(field(e), "vars.x");
    }

    #[test]
    fn reserved_variables_cannot_be_set_by_the_caller() {
        let c = composer();
        for k in RESERVED {
            let mut vars = json!({"subject": "s", "body": "b"});
            vars[k] = json!("Evil Corp");
            match notice(&c, None, vars).unwrap_err() {
                ComposeError::Reserved { field } => assert_eq!(field, format!("vars.{k}")),
                other => panic!("{k}: {other}"),
            }
        }
    }

    #[test]
    fn a_message_over_max_message_size_is_refused() {
        let config = Config::from_toml_str(
            "[sender]\nfrom = \"Example Clinic <no-reply@example.jp>\"\nhostname = \"mail.example.jp\"\n\
             max_message_size = 20000\n",
            &ConfigSources::default(),
        )
        .unwrap();
        let c = Composer::new(ComposeSettings::from_config(&config)).unwrap();
        let e = notice(
            &c,
            None,
            json!({"subject": "s", "body": "本".repeat(10_000)}),
        )
        .unwrap_err();
        assert!(
            matches!(e, ComposeError::TooLarge { limit: 20000, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("sender.max_message_size"), "{e}");
        notice(
            &c,
            None,
            json!({"subject": "s", "body": "本".repeat(1_000)}),
        )
        .unwrap();
    }
}
