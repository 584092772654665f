//! One integration-test binary (as ripgrep does): every test here starts the real
//! `mailgate` binary or talks to real peers, on free ports with temporary stores.

mod a11y;
mod admin_charts;
mod api_contract;
mod bounce_corpus;
mod bounce_golden;
mod bounces;
mod browser;
mod cdp;
mod cluster;
mod console;
mod console_search;
mod delivery;
mod dkim_verify;
mod dns_check;
mod flow;
mod hardening;
mod invite_csv;
mod journey;
mod layers;
mod lint;
mod log_search;
mod newcomer;
mod pages;
mod postgres_store;
mod serve;
mod signing;
mod spam;
mod support;
mod webhooks;
