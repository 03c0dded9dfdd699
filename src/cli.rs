//! The command line's subcommands and flags (DESIGN.md, "Command line"). Declared from
//! `main.rs`, so the library never sees argv.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// crv: customer relationship value — score, tier and select customers.
#[derive(Debug, Parser)]
#[command(name = "crv", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write realistic synthetic customers as CSV.
    Gen(GenArgs),
    /// Turn a customer CSV into a store file (progress on stderr).
    Import(ImportArgs),
    /// Show a store's rows, columns, sizes and checksums.
    Info(InfoArgs),
}

/// `crv gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of customers to generate.
    #[arg(long)]
    pub customers: u64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output CSV file.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// `crv import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The customer CSV (header row; `customer_id` required).
    pub csv: PathBuf,
    /// The store file to write (replaced atomically).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// `crv info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The store file.
    pub store: PathBuf,
    /// Also check every checksum and every value's domain.
    #[arg(long)]
    pub verify: bool,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}
