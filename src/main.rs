//! The `crv` command line: parses (cli.rs), runs the command (commands/), prints the error and
//! sets the exit code.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use crv::allocator::Mimalloc;

use cli::{Cli, Command};

#[global_allocator]
static GLOBAL: Mimalloc = Mimalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(args) if args.purchases.is_some() => commands::rfm::gen_purchases(&args),
        Command::Gen(args) => commands::store::gen_customers(&args),
        Command::Import(args) => commands::store::import(&args),
        Command::Info(args) => commands::store::info(&args),
        Command::Score(args) => commands::score::score(&args),
        Command::Select(args) => commands::select::select(&args),
        Command::Simulate(args) => commands::simulate::simulate(&args),
        Command::Serve(args) => commands::serve::serve(&args),
        Command::Fit(args) => commands::fit::fit(&args),
        Command::Optimise(args) => commands::optimise::optimise(&args),

        Command::Rfm(args) => commands::rfm::rfm(&args),
        Command::Compact(args) => commands::compact::compact(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
