//! `mailgate dkim keygen` and `mailgate dns`.

use std::path::Path;
use std::process::ExitCode;

use crate::dkim::{Algorithm, RSA_DEFAULT_BITS, generate, txt_record, write_key_file};

/// Writes a new key and prints its record.
pub fn keygen(domain: &str, selector: &str, algorithm: &str, bits: usize, out: &Path) -> ExitCode {
    let algorithm: Algorithm = match algorithm.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mailgate: --algorithm: {e}");
            return ExitCode::from(2);
        }
    };
    let bits = if bits == 0 { RSA_DEFAULT_BITS } else { bits };
    let key = match generate(algorithm, bits) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("mailgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = match write_key_file(out, selector, &key) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mailgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let record = txt_record(domain, selector, algorithm, &key.public_key_b64);
    eprintln!(
        "mailgate: wrote the private key to {} (mode 0600)",
        path.display()
    );
    eprintln!("mailgate: add to the configuration:");
    eprintln!(
        "[[dkim]]\ndomain = \"{domain}\"\nselector = \"{selector}\"\nalgorithm = \"{}\"\nkey_file = \"{}\"",
        algorithm.as_str(),
        path.display()
    );
    eprintln!("mailgate: publish this record, then wait for it to resolve before sending:");
    println!("{}", record.zone_line());
    ExitCode::SUCCESS
}
