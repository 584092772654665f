//! Bounce parsing benchmark: `mailgate::bounce::parse` (in process, release) against
//! flufl.bounce (PyPI `flufl.bounce`, the detector GNU Mailman uses), both over the
//! same files of the Sisimai corpus (`tests/corpus/sisimai/maildir/{bsd,not}`), in the
//! same run. Each side parses every file once per round, from bytes already in memory
//! to its result; only that loop is timed. Prints both rates (messages per second), their
//! ratio, and how many failed recipients each found, with the overlap.
//!
//! Run: `bench/run.sh bounces [--rounds N]` (or `cargo bench --bench bounces -- --bench`).
//! The reference needs `python3 -m pip install flufl.bounce` (bench/run.sh does it when
//! missing; set `PYTHON` for another interpreter). Not part of the tests.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mailgate::bounce::{Action, BounceReport};

fn rounds() -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == "--rounds")
        .and_then(|i| argv.get(i + 1))
        .map(|n| n.parse().expect("--rounds N"))
        .unwrap_or(20)
}

/// The corpus files, sorted, from both folders.
fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sisimai/maildir");
    let mut files = Vec::new();
    for sub in ["bsd", "not"] {
        for e in std::fs::read_dir(root.join(sub)).expect("the corpus folder") {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// The failed (or delayed) recipients of a report seen as a bounce (not a complaint or an
/// auto-reply), lower-cased and without repeats, as flufl.bounce returns a set per
/// message; with `permanent_only`, the permanent failures alone.
fn failed(report: &BounceReport, permanent_only: bool) -> BTreeSet<String> {
    if !report.bounce {
        return BTreeSet::new();
    }
    report
        .recipients
        .iter()
        .filter(|r| match r.action {
            Action::Failed => r.permanent || !permanent_only,
            Action::Delayed => !permanent_only,
            _ => false,
        })
        .map(|r| r.address.trim().to_lowercase())
        .collect()
}

struct Found {
    files_with_failures: usize,
    addresses: usize,
}

fn count(per_file: &[BTreeSet<String>]) -> Found {
    Found {
        files_with_failures: per_file.iter().filter(|s| !s.is_empty()).count(),
        addresses: per_file.iter().map(BTreeSet::len).sum(),
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs bench/flufl_bounce.py over the files; returns (seconds, per-file permanent
/// addresses from `scan_message`, per-file temporary + permanent from `all_failures`).
fn flufl(files: &[PathBuf], rounds: usize) -> (f64, Vec<BTreeSet<String>>, Vec<BTreeSet<String>>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/flufl_bounce.py");
    let out = Command::new(python())
        .arg(script)
        .arg(rounds.to_string())
        .args(files)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "flufl.bounce side failed (install it with `{} -m pip install flufl.bounce`): {}",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    let set = |f: &serde_json::Value, key: &str| -> BTreeSet<String> {
        f[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let entries = v["files"].as_array().expect("files");
    assert_eq!(entries.len(), files.len());
    let errors = v["errors"].as_u64().unwrap_or(0);
    if errors > 0 {
        eprintln!("  (flufl.bounce raised on {errors} files; counted as finding nothing)");
    }
    (
        v["seconds"].as_f64().expect("seconds"),
        entries.iter().map(|f| set(f, "permanent")).collect(),
        entries.iter().map(|f| set(f, "all")).collect(),
    )
}

fn main() {
    // `cargo test` runs bench targets only when asked; refuse to run as a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `bench/run.sh bounces` or `cargo bench --bench bounces`");
        return;
    }
    let rounds = rounds();
    let files = corpus();
    let raws: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let bytes: usize = raws.iter().map(Vec::len).sum();
    println!(
        "bounce parsing benchmark: {} files ({} KiB) of the Sisimai corpus, {rounds} rounds each side",
        files.len(),
        bytes / 1024
    );

    // mailgate: one untimed pass for the results, then the timed rounds.
    let reports: Vec<BounceReport> = raws.iter().map(|r| mailgate::bounce::parse(r)).collect();
    let started = Instant::now();
    for _ in 0..rounds {
        for raw in &raws {
            std::hint::black_box(mailgate::bounce::parse(std::hint::black_box(raw)));
        }
    }
    let mg_seconds = started.elapsed().as_secs_f64();
    let mg_rate = (rounds * raws.len()) as f64 / mg_seconds;
    let mg_sets: Vec<BTreeSet<String>> = reports.iter().map(|r| failed(r, false)).collect();
    let mg_permanent: Vec<BTreeSet<String>> = reports.iter().map(|r| failed(r, true)).collect();

    let (fl_seconds, fl_perm, fl_all) = flufl(&files, rounds);
    let fl_rate = (rounds * raws.len()) as f64 / fl_seconds;

    println!("  mailgate::bounce::parse:     {mg_rate:>9.0} msg/s");
    println!(
        "  flufl.bounce scan_message:   {fl_rate:>9.0} msg/s (CPython, email.message_from_bytes + scan_message)"
    );
    println!("  ratio mailgate/flufl:        {:>9.2}", mg_rate / fl_rate);
    let bounces = reports.iter().filter(|r| r.bounce).count();
    let m = count(&mg_sets);
    let mp = count(&mg_permanent);
    let fp = count(&fl_perm);
    let fa = count(&fl_all);
    println!("  recipients found (distinct addresses per file, summed):");
    println!(
        "    mailgate failed or delayed: {:>5} in {} files ({bounces} files reported as bounces)",
        m.addresses, m.files_with_failures
    );
    println!(
        "    mailgate permanent:         {:>5} in {} files",
        mp.addresses, mp.files_with_failures
    );
    println!(
        "    flufl scan_message:         {:>5} in {} files (permanent failures)",
        fp.addresses, fp.files_with_failures
    );
    println!(
        "    flufl all_failures:         {:>5} in {} files (temporary + permanent)",
        fa.addresses, fa.files_with_failures
    );
    let both = |a: &[BTreeSet<String>], b: &[BTreeSet<String>]| -> usize {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.intersection(y).count())
            .sum()
    };
    println!(
        "    found by both, same file:   {:>5} (failed or delayed vs all_failures), {} (permanent vs scan_message)",
        both(&mg_sets, &fl_all),
        both(&mg_permanent, &fl_perm)
    );
    let _ = std::io::stdout().flush();
}
