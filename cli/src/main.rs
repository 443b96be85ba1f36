//! `llm-baremetal`: prepare text, train a GPT, inspect and run it, build a bootable image.

mod boot;
mod export;
mod host;
mod image;
mod infer;
mod train;

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
    /// Show a checkpoint's shape, size, parameter count and format (NaN or infinite weights are reported as errors).
    Inspect {
        checkpoint: PathBuf,
        /// Also show the memory needed for this many positions of context.
        #[arg(long)]
        context: Option<usize>,
    },
    /// Continue a prompt; the text streams to stdout, speed to stderr.
    Generate(infer::GenerateArgs),
    /// Chat with a model in the terminal (/help for commands).
    Chat(infer::ChatArgs),
    /// Measure prefill and decode speed.
    Bench(infer::BenchArgs),
    /// Turn text files into llm.c token files (byte-level), with a validation split.
    Prepare(train::PrepareArgs),
    /// Train a GPT on prepared data (all cores), with checkpoints, resume and Ctrl-C.
    Train(train::TrainArgs),
    /// Loss curve (SVG) and Markdown report of a training run.
    Report { run_dir: PathBuf },
    /// Write an llm.c checkpoint as a GGUF file (architecture gpt2, byte vocabulary).
    Export(export::ExportArgs),
    /// Write a bootable GPT disk image (FAT32 ESP with the UEFI app, model and config).
    Image(image::ImageArgs),
    /// Boot a disk image (or a model) in QEMU with the chat on this terminal.
    Boot(boot::BootArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect { checkpoint, context } => infer::inspect(checkpoint, *context),
        Command::Generate(a) => infer::generate(a),
        Command::Chat(a) => infer::chat(a),
        Command::Bench(a) => infer::bench(a),
        Command::Prepare(a) => train::prepare(a),
        Command::Train(a) => train::train(a),
        Command::Report { run_dir } => train::report(run_dir),
        Command::Image(a) => image::image(a),
        Command::Export(a) => export::export(a),
        Command::Boot(a) => return finish(boot::boot(a)),
    };
    finish(result.map(|()| ExitCode::SUCCESS))
}

/// One clear line and a non-zero status for any error; no backtraces.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
