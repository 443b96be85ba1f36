//! `llm-baremetal`: prepare text, train a GPT, inspect and run it, build a bootable image.

mod boot;
mod export;
mod host;
mod image;
mod infer;
mod spin_pool;
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => clap_exit(e),
    };
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

/// clap's own message, with any quoted value longer than [`host::QUOTE_MAX`] cut.
fn clap_exit(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        e.exit();
    }
    let plain = e.render().to_string();
    let short = shorten_quotes(&plain);
    if short == plain {
        e.exit();
    }
    errln!("{}", short.trim_end());
    std::process::exit(e.exit_code());
}

/// Cuts the text between single quotes to [`host::QUOTE_MAX`] characters.
fn shorten_quotes(s: &str) -> String {
    let parts: Vec<&str> = s.split('\'').collect();
    if parts.len() < 3 {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len().min(4096));
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\'');
        }
        // Odd pieces are inside quotes (an unmatched last quote leaves its tail alone).
        if i % 2 == 1 && i + 1 < parts.len() {
            out.push_str(&host::shorten(part, host::QUOTE_MAX));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// An error line for the terminal: any run of text without spaces longer than
/// [`host::QUOTE_MAX`] (a path, a value echoed back) is cut, control characters are escaped, and
/// the line is at most 1000 characters.
fn one_line(msg: &str) -> String {
    let line = msg.split(' ').map(|w| host::shorten(w, host::QUOTE_MAX)).collect::<Vec<_>>().join(" ");
    host::shorten(&line, 1000)
}

/// One clear line and a non-zero status for any error; no backtraces. Output that can no
/// longer be written because the reader went away (`| head`) ends the program quietly with
/// status 0, as a finished one.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    use std::io::Write;
    // Text still buffered in stdout is written now, where a failure can be reported.
    let result = result.and_then(|code| std::io::stdout().flush().map(|()| code).map_err(host::output_error));
    match result {
        Ok(code) => code,
        Err(e) if e.chain().any(|c| c.downcast_ref::<host::OutputError>().is_some_and(|o| o.is_broken_pipe())) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
