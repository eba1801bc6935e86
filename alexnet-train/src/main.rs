//! `alexnet-train`: trains AlexNet; see `alexnet-train --help` and [`alexnet_train::cli`].

use std::process::ExitCode;

use alexnet_train::cli::{Args, Invocation};
use clap::error::ErrorKind;
use clap::CommandFactory;

/// mimalloc, keeping freed memory for reuse (see [`alexnet_common::allocator`]).
#[global_allocator]
static ALLOCATOR: alexnet_common::allocator::MiMalloc = alexnet_common::allocator::MiMalloc;

fn main() -> ExitCode {
    alexnet_common::allocator::keep_freed_memory();
    let parsed = Args::command()
        .try_get_matches()
        .and_then(|matches| Invocation::from_matches(&matches));
    let invocation = match parsed {
        Ok(invocation) => invocation,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // clap adds usage lines; keep the one that says what is wrong.
            let text = err.render().to_string();
            let line = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{line}");
            return ExitCode::FAILURE;
        }
    };
    match alexnet_train::cli::run(invocation) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes, joined; control characters of file names
            // (ANSI escapes) escaped.
            let message = format!("{err:#}").replace('\n', " ");
            let message = alexnet_model::files::escape_control(&message);
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
