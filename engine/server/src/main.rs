//! The `waystation` binary.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Waystation: a workflow engine with WebAssembly plugins.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "WAYSTATION_LISTEN")]
        listen: SocketAddr,
    },
    /// Validate workflow definition files; prints `FILE: /pointer: message` per error and
    /// exits 1 if any file is invalid. Plugin references are checked for form only.
    Validate {
        /// Definition files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a Mermaid flowchart of a definition's stages and transitions.
    Graph {
        /// Definition file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => {
            waystation_server::cli::validate::run(&files, &mut std::io::stdout().lock())
        }
        Command::Graph { file } => waystation_server::cli::graph::run(
            &file,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Serve { listen } => serve(listen),
    };
    result.unwrap_or_else(|e| {
        eprintln!("waystation: {e}");
        ExitCode::from(2)
    })
}

fn serve(listen: SocketAddr) -> std::io::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!(address = %listener.local_addr()?, "waystation listening (only /healthz at this stage)");
        waystation_server::run(listener, shutdown_signal()).await?;
        tracing::info!("waystation stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
