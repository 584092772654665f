//! # mailgate
//!
//! A self-hosted mail gateway for the mail that must arrive: account setup and password
//! reset. It queues mail durably, signs it with DKIM, delivers it over SMTP with retries,
//! reads the bounces that come back, serves the pages behind the mailed link, and keeps a
//! delivery timeline per message for the people who answer "the mail never came".
//!
//! ## Layout
//!
//! Dependencies point one way, from the top of this list down; `tests/it/layers.rs`
//! holds each module's layer and fails on an edge that goes up or sideways:
//!
//! ```text
//! cli → app → (web, control, inbound) → services → intake → (flow, timeline, metrics)
//!     → retention → queue → (compose, dns, logging, checks, webhooks)
//!     → (config, operators, apikey, audit)
//!     → (store, dkim, bounce, delivery, verp, report) → domain → (secrets, shutdown)
//! ```
//!
//! - [`domain`]: addresses, ids, durations, message/flow/bounce/audit records: plain values,
//!   and the flow's state machine (`domain::transition`), whose named transitions are
//!   the only way the store changes a flow.
//! - [`secrets`]: tokens, codes, digests, request ids, the constant-time compare.
//! - [`store`]: what mailgate keeps, said as intents: one async trait per aggregate
//!   (messages and their queue, flows, bounces, operators, keys, limits, meta, events)
//!   and the unit of durability, with two implementations: [`store::sled`] (one box:
//!   trees, key encoding, the spool of message bytes, the group-committed flush) and
//!   [`store::postgres`] (any number of nodes on one database); [`store::copy`] moves a
//!   sled store into PostgreSQL.
//! - [`retention`]: forgets finished messages, old bounces and old events (with their
//!   webhook deliveries) after `store.retention`.
//! - [`config`]: TOML + environment + flags → a validated [`config::Config`].
//! - [`compose`]: templates and MIME; [`dkim`]: signing, keys, records; [`verp`]: return paths.
//! - [`queue`]: enqueue, the handoff to the delivery worker, retry policy, the worker, and
//!   [`queue::lifecycle`], the only code that changes a message's status; it tells
//!   listeners (flows) when a message is finished. [`delivery`]: outbox, SMTP, MX.
//! - [`services`]: the bag the entry points share (configuration, store, composer, and
//!   the layer handles [`queue::Queue`], [`flow::Flows`] and [`intake::Intake`]); the
//!   layers below take only their own handle, so a signature says what it touches.
//! - [`flow`]: setup and reset flows: link, button, code, password; it follows its mail
//!   through the queue's lifecycle listener, wired in [`app`] and [`control`].
//! - [`timeline`]: the delivery log of an address or a message.
//! - [`bounce`]: parsing reports (pure); [`intake`]: tying a report to its message and
//!   applying what it means; [`inbound`]: the SMTP bounce listener.
//! - [`web`]: the HTTP router, pages and API; [`web::console`] is the operators' console.
//! - [`operators`]: console accounts, sessions and login throttling; [`audit`]: who did what.
//! - [`apikey`]: the application's keys; [`metrics`]: `GET /metrics`; [`report`]: the
//!   bounce report's rows and CSV, for the console and the command line.
//! - [`webhooks`]: posts the store's events to the application, signed per Standard
//!   Webhooks, with retries kept in the store.
//! - [`checks`]: what `mailgate check` verifies; [`dns`]: the records to publish.
//! - [`control`]: how commands reach the store while `serve` holds it.
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
pub mod retention;
pub mod secrets;
pub mod services;
pub mod shutdown;
pub mod store;
pub mod timeline;
pub mod verp;
pub mod web;
pub mod webhooks;
