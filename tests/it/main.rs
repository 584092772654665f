//! One integration-test binary (as ripgrep does): every test here starts the real
//! `mailgate` binary or talks to real peers, on free ports with temporary stores.

mod a11y;
mod bounce_corpus;
mod bounce_golden;
mod bounces;
mod browser;
mod cdp;
mod console;
mod delivery;
mod dkim_verify;
mod flow;
mod invite_csv;
mod journey;
mod lint;
mod newcomer;
mod pages;
mod serve;
mod signing;
mod spam;
mod support;
