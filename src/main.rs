//! The `mailgate` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = mailgate::cli::Cli::parse();
    mailgate::cli::run(cli).await
}
