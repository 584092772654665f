//! Fuzz target: any bytes into the bounce parser. `try_parse` catches a panic as its
//! last-resort guard and says so with `Err`; this target turns that back into a panic,
//! so a panic in the parser counts as a crash even though `parse` would hide it.
//! (libfuzzer-sys's panic hook aborts at the first panic, caught or not, so the crash
//! input is saved either way.) Run: `fuzz/run.sh SECONDS`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(panic) = mailgate::bounce::try_parse(data) {
        panic!("{panic}");
    }
});
