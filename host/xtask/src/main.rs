//! Repository tasks for edgekeeper, run as `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`).
//!
//! - `tidy`: check the architecture invariants of `ARCHITECTURE.md` (pure crates stay pure,
//!   anyhow only in the binary, clippy bans on clocks and RNGs, crate naming and versions).
//!   The same checks run as the `tidy` test, so `cargo test --workspace` enforces them.

mod tidy;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  tidy    check the architecture invariants (pure crates, anyhow, clippy.toml, naming)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tidy"] => tidy_main(),
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn tidy_main() -> ExitCode {
    match tidy::run(&tidy::project_root()) {
        Ok(violations) if violations.is_empty() => {
            println!("tidy: ok");
            ExitCode::SUCCESS
        }
        Ok(violations) => {
            eprintln!("{}", tidy::report(&violations));
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("tidy: {err}");
            ExitCode::FAILURE
        }
    }
}
