//! `llm-baremetal`: prepare text, train a GPT, inspect and run it, build a bootable image.

mod host;
mod infer;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "llm-baremetal", version, about = "Train a small GPT on a CPU and boot it on bare metal")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a checkpoint's shape, size, parameter count and format.
    Inspect { checkpoint: PathBuf },
    /// Continue a prompt; the text streams to stdout, speed to stderr.
    Generate(infer::GenerateArgs),
    /// Chat with a model in the terminal (/help for commands).
    Chat(infer::ChatArgs),
    /// Measure prefill and decode speed.
    Bench(infer::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect { checkpoint } => infer::inspect(checkpoint),
        Command::Generate(a) => infer::generate(a),
        Command::Chat(a) => infer::chat(a),
        Command::Bench(a) => infer::bench(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
