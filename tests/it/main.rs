//! One integration-test binary (as ripgrep does): every test here starts the real
//! `mailgate` binary or talks to real peers, on free ports with temporary stores.

mod serve;
mod support;
