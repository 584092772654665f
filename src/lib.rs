//! # mailgate
//!
//! A self-hosted mail gateway for the mail that must arrive: account setup and password
//! reset. It queues mail durably, signs it with DKIM, delivers it over SMTP with retries,
//! reads the bounces that come back, serves the pages behind the mailed link, and keeps a
//! delivery timeline per message for the people who answer "the mail never came".
//!
//! ## Layout
//!
//! Dependencies point one way: `domain` depends on nothing; `store` (the only module that
//! names sled) depends on `domain`; `control`, `web` and `cli` use the store through
//! [`services::Services`]; `app` wires everything for `serve`, and nothing depends on it.
//!
//! - [`domain`]: addresses, ids, durations, message/flow/bounce records: plain values.
//! - [`config`]: TOML + environment + flags → a validated [`config::Config`].
//! - [`store`]: sled trees, the spool of message bytes, key encoding, group-committed flush.
//! - [`services`]: the shared handles every entry point runs against.
//! - [`control`]: how commands reach the store while `serve` holds it.
//! - [`compose`]: templates and MIME; [`dkim`]: signing, keys, records; [`verp`]: return paths.
//! - [`queue`]: enqueue, the handoff to the delivery worker, retry policy, the worker;
//!   [`delivery`]: outbox, SMTP, MX.
//! - [`timeline`]: the delivery log of an address or a message.
//! - [`bounce`]: parsing reports (pure); [`inbound`]: the SMTP bounce listener;
//!   [`intake`]: tying a report to its message and applying what it means.
//! - [`flow`]: setup and reset flows: link, button, code, password.
//! - [`web`]: the HTTP router, pages and API; [`web::console`] is the operators' console.
//! - [`operators`]: console accounts, sessions and login throttling; [`audit`]: who did what.
//! - [`apikey`]: the application's keys; [`metrics`]: `GET /metrics`; [`report`]: the
//!   bounce report's rows and CSV, for the console and the command line.
//! - [`checks`]: what `mailgate check` verifies; [`dns`]: the records to publish.
//! - [`app`]: runs `serve`; [`cli`]: the command line.

pub mod apikey;
pub mod app;
pub mod audit;
pub mod bounce;
pub mod checks;
pub mod cli;
pub mod compose;
pub mod config;
pub mod control;
pub mod delivery;
pub mod dkim;
pub mod dns;
pub mod domain;
pub mod flow;
pub mod inbound;
pub mod intake;
pub mod logging;
pub mod metrics;
pub mod operators;
pub mod queue;
pub mod report;
pub mod secrets;
pub mod services;
pub mod shutdown;
pub mod store;
pub mod timeline;
pub mod verp;
pub mod web;
