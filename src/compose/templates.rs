//! Mail templates: handlebars in strict mode, so a variable the caller forgot is an
//! error at enqueue rather than a blank in someone's inbox.
//!
//! Each template is three files per locale under `templates/mail/NAME/`:
//! `LOCALE.subject.hbs`, `LOCALE.text.hbs` and `LOCALE.html.hbs`. The shipped ones are
//! compiled into the binary (one file to deploy); files of the same path under
//! `templates.dir` replace them. Subject and text are rendered without HTML escaping,
//! the HTML part with it.

use std::path::Path;

use handlebars::{Context, Handlebars};
use serde_json::Value;

/// The locales every shipped template exists in.
pub const LOCALES: [&str; 2] = ["ja", "en"];

/// The parts of one template.
const PARTS: [&str; 3] = ["subject", "text", "html"];

macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        &[$(
            ($name, "ja", [
                include_str!(concat!("../../templates/mail/", $name, "/ja.subject.hbs")),
                include_str!(concat!("../../templates/mail/", $name, "/ja.text.hbs")),
                include_str!(concat!("../../templates/mail/", $name, "/ja.html.hbs")),
            ]),
            ($name, "en", [
                include_str!(concat!("../../templates/mail/", $name, "/en.subject.hbs")),
                include_str!(concat!("../../templates/mail/", $name, "/en.text.hbs")),
                include_str!(concat!("../../templates/mail/", $name, "/en.html.hbs")),
            ]),
        )*]
    };
}

/// (name, locale, [subject, text, html]) of every template compiled in.
pub const SHIPPED: &[(&str, &str, [&str; 3])] =
    shipped!["notice", "invite", "reset", "code", "password_changed"];

/// Errors from loading or rendering templates.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("there is no template {name:?} in locale {locale:?} (templates: {known})")]
    Unknown {
        name: String,
        locale: String,
        known: String,
    },
    #[error("template {name}.{locale}.{part}: {detail}")]
    Render {
        name: String,
        locale: String,
        part: &'static str,
        detail: String,
    },
    #[error("template file {path}: {detail}")]
    Load { path: String, detail: String },
}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The compiled templates.
pub struct Templates {
    plain: Handlebars<'static>,
    html: Handlebars<'static>,
    names: Vec<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.names)
            .finish()
    }
}

/// handlebars' own HTML escaping, with a fast way out for the common text that needs
/// none (its escaper builds the output a character at a time: 1.4% of the CPU per
/// message in the delivery benchmark).
fn escape_html(data: &str) -> String {
    let b = data.as_bytes();
    if memchr::memchr3(b'<', b'>', b'"', b).is_some()
        || memchr::memchr3(b'&', b'\'', b'`', b).is_some()
        || memchr::memchr(b'=', b).is_some()
    {
        handlebars::html_escape(data)
    } else {
        data.to_owned()
    }
}

fn key(name: &str, locale: &str, part: &str) -> String {
    format!("{name}/{locale}.{part}")
}

impl Templates {
    /// Compiles the shipped templates, replaced by files under `override_dir`. Every
    /// template that fails to compile is reported.
    pub fn load(override_dir: Option<&Path>) -> Result<Templates, Vec<TemplateError>> {
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_escape_fn(escape_html);
        let mut errors = Vec::new();
        let mut names = Vec::new();
        for (name, locale, sources) in SHIPPED {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
            for (i, part) in PARTS.iter().enumerate() {
                let mut source = sources[i].to_string();
                if let Some(dir) = override_dir {
                    let path = dir
                        .join("mail")
                        .join(name)
                        .join(format!("{locale}.{part}.hbs"));
                    if path.is_file() {
                        match std::fs::read_to_string(&path) {
                            Ok(s) => source = s,
                            Err(e) => errors.push(TemplateError::Load {
                                path: path.display().to_string(),
                                detail: e.to_string(),
                            }),
                        }
                    }
                }
                let registry = if *part == "html" {
                    &mut html
                } else {
                    &mut plain
                };
                if let Err(e) = registry.register_template_string(&key(name, locale, part), source)
                {
                    errors.push(TemplateError::Render {
                        name: name.to_string(),
                        locale: locale.to_string(),
                        part,
                        detail: e.to_string(),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(Templates { plain, html, names })
        } else {
            Err(errors)
        }
    }

    /// The template names known.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True when `name` exists in `locale`.
    pub fn has(&self, name: &str, locale: &str) -> bool {
        self.plain.has_template(&key(name, locale, "subject"))
    }

    /// Renders the three parts.
    pub fn render(&self, name: &str, locale: &str, vars: Value) -> Result<Rendered, TemplateError> {
        if !self.has(name, locale) {
            return Err(TemplateError::Unknown {
                name: name.to_string(),
                locale: locale.to_string(),
                known: self.names.join(", "),
            });
        }
        // One context for the three parts: `render` would copy the variables for each.
        let context = Context::from(vars);
        let part = |registry: &Handlebars<'static>, part: &'static str| {
            registry
                .render_with_context(&key(name, locale, part), &context)
                .map_err(|e| TemplateError::Render {
                    name: name.to_string(),
                    locale: locale.to_string(),
                    part,
                    detail: match e.reason() {
                        handlebars::RenderErrorReason::MissingVariable(Some(var)) => {
                            format!("vars.{var} is missing: the template uses it")
                        }
                        other => other.to_string(),
                    },
                })
        };
        Ok(Rendered {
            subject: part(&self.plain, "subject")?.trim().to_string(),
            text: part(&self.plain, "text")?,
            html: part(&self.html, "html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Value {
        json!({"subject": "Clinic hours <changed>", "body": "Line one.\nLine two.", "name": "Taro",
               "organization": "Example Clinic", "contact": "help@example.jp", "public_url": "https://id.example.jp"})
    }

    #[test]
    fn notice_renders_in_both_locales_and_escapes_only_html() {
        let t = Templates::load(None).unwrap();
        for locale in LOCALES {
            let r = t.render("notice", locale, vars()).unwrap();
            assert_eq!(r.subject, "Clinic hours <changed>");
            assert!(r.text.contains("Line two."));
            // The subject is the HTML part's title: present, and escaped.
            assert!(
                r.html
                    .contains("<title>Clinic hours &lt;changed&gt;</title>"),
                "{}",
                r.html
            );
            assert!(!r.html.contains("<changed>"), "{}", r.html);
        }
    }

    #[test]
    fn the_html_escaper_agrees_with_handlebars_own() {
        for text in [
            "plain text, 日本語も",
            "<b>\"quoted\" & 'single'</b> `tick` a=b",
            "",
            "=",
        ] {
            assert_eq!(escape_html(text), handlebars::html_escape(text), "{text}");
        }
    }

    #[test]
    fn a_missing_variable_is_an_error_naming_the_template() {
        let t = Templates::load(None).unwrap();
        let e = t.render("notice", "en", json!({"name": ""})).unwrap_err();
        assert!(e.to_string().contains("notice.en"), "{e}");
        assert!(
            e.to_string().contains("is missing: the template uses it"),
            "{e}"
        );
        assert!(!e.to_string().contains("strict mode"), "{e}");
    }

    #[test]
    fn an_unknown_template_lists_the_known_ones() {
        let t = Templates::load(None).unwrap();
        let e = t.render("nope", "en", vars()).unwrap_err();
        assert!(e.to_string().contains("notice"), "{e}");
    }

    #[test]
    fn an_override_folder_replaces_a_shipped_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail/notice");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("en.subject.hbs"), "Override: {{subject}}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        assert_eq!(
            t.render("notice", "en", vars()).unwrap().subject,
            "Override: Clinic hours <changed>"
        );
    }
}
