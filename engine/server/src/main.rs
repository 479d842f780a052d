//! The `waystation` binary.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use waystation_server::cli::store::Location;

/// mimalloc instead of glibc's malloc: the write path allocates and frees many small
/// buffers across threads, where glibc's arenas cost a fifth of a durable command's CPU
/// (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Waystation: a workflow engine with WebAssembly plugins.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (data in ./waystation-data, on 127.0.0.1:8080, unless configured).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080; env WAYSTATION_LISTEN].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory [default: ./waystation-data; env WAYSTATION_DATA].
        #[arg(long)]
        data: Option<PathBuf>,
        /// TOML configuration file [env WAYSTATION_CONFIG].
        #[arg(long, env = "WAYSTATION_CONFIG")]
        config: Option<PathBuf>,
        /// Log format: text or json [env WAYSTATION_LOG_FORMAT].
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Validate workflow definition files; prints `FILE: /pointer: message` per error and
    /// exits 1 if any file is invalid. Plugin references are checked for form only.
    Validate {
        /// Definition files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// TOML configuration whose business calendars definitions may name
        /// [env WAYSTATION_CONFIG].
        #[arg(long, env = "WAYSTATION_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print a Mermaid flowchart of a definition's stages and transitions.
    Graph {
        /// Definition file.
        file: PathBuf,
        /// TOML configuration whose business calendars the definition may name
        /// [env WAYSTATION_CONFIG].
        #[arg(long, env = "WAYSTATION_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Look at or run a plugin component under the server's sandbox, without a server.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Work on a data directory's store while no server runs on it.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Work on the report rollups of a data directory while no server runs on it.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Throw the report rollups away and compute them again from the stored instances and
    /// their histories (after an upgrade that changes what is rolled up). Instances removed
    /// by retention no longer count. Stop the server first.
    Rebuild {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy everything in a store (definitions, instances, history, timers, tasks, outbox,
    /// idempotency records, tokens, schedules, and the plugin registry) into a new data
    /// directory or an empty PostgreSQL database: to another embedded engine, from an
    /// embedded store into PostgreSQL, or back. Stop the servers first; start them on the
    /// new store afterwards.
    Migrate {
        /// What to copy: a data directory (its store's engine is found from its files) or
        /// a PostgreSQL database (`postgres://user@host:5432/db`).
        #[arg(long)]
        from: String,
        /// Where to: a new (or empty) data directory, or a PostgreSQL database with no
        /// Waystation data yet (`postgres://...`; its tables are created).
        #[arg(long)]
        to: String,
        /// The engine of a new data directory: fjall (the default), sled or redb.
        #[arg(long)]
        engine: Option<waystation_store::Engine>,
        /// The schema of the `--from` database, as `[store] schema` [default: the user's
        /// default schema, usually `public`]. A schema holding no store is refused.
        #[arg(long)]
        from_schema: Option<String>,
        /// The schema of the `--to` database, as `[store] schema` [default: the user's].
        #[arg(long)]
        to_schema: Option<String>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Print the component's world, imports, exports, size and digest; exit 1 with the
    /// reason when it is not a usable plugin.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
    },
    /// Run the component once on INPUT under the default limits; print its output (or
    /// typed failure), its log lines and the duration. Exit 1 when the call fails.
    Invoke {
        /// The component (`.wasm`).
        file: PathBuf,
        /// The input JSON, or `@PATH` to read it from a file.
        #[arg(long)]
        input: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files, config } => match cli_calendars(config.as_deref()) {
            Ok(calendars) => waystation_server::cli::validate::run(
                &files,
                &calendars,
                &mut std::io::stdout().lock(),
            ),
            Err(code) => Ok(code),
        },
        Command::Graph { file, config } => match cli_calendars(config.as_deref()) {
            Ok(calendars) => waystation_server::cli::graph::run(
                &file,
                &calendars,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            ),
            Err(code) => Ok(code),
        },
        Command::Plugin {
            command: PluginCommand::Check { file },
        } => waystation_server::cli::plugin::check(&file, &mut std::io::stdout().lock()),
        Command::Plugin {
            command: PluginCommand::Invoke { file, input },
        } => match input.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).and_then(|text| {
                waystation_server::cli::plugin::invoke(&file, &text, &mut std::io::stdout().lock())
            }),
            None => {
                waystation_server::cli::plugin::invoke(&file, &input, &mut std::io::stdout().lock())
            }
        },
        Command::Store {
            command:
                StoreCommand::Migrate {
                    from,
                    to,
                    engine,
                    from_schema,
                    to_schema,
                },
        } => match Location::parse(&from, from_schema)
            .and_then(|from| Ok((from, Location::parse(&to, to_schema)?)))
            .and_then(|(from, to)| {
                waystation_server::cli::store::migrate(
                    &from,
                    &to,
                    engine,
                    &mut std::io::stdout().lock(),
                )
            }) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("waystation: {}", with_causes(&e));
                Ok(ExitCode::from(1))
            }
        },
        Command::Reports {
            command: ReportsCommand::Rebuild { data },
        } => match waystation_server::cli::reports::rebuild(&data, &mut std::io::stdout().lock()) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("waystation: {}", with_causes(&e));
                Ok(ExitCode::from(1))
            }
        },
        Command::Serve {
            listen,
            data,
            config,
            log_format,
        } => serve(listen, data, config, log_format),
    };
    result.unwrap_or_else(|e| {
        eprintln!("waystation: {e}");
        ExitCode::from(2)
    })
}

/// The business calendars of the configuration at `path` (none without one), for the
/// commands that compile definitions; a bad file or calendar is printed and exits 2.
fn cli_calendars(
    path: Option<&std::path::Path>,
) -> Result<waystation_core::calendar::Calendars, ExitCode> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    waystation_server::config::Config::from_file(path)
        .and_then(|c| c.calendars())
        .map_err(|e| {
            eprintln!("waystation: {e}");
            ExitCode::from(2)
        })
}

/// `e` followed by each error that caused it, joined by ": ", so an operator reads why
/// (the database's message, the OS error), not only what was being done.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Stack of every thread the server runs work on: tokio's async workers and its blocking
/// pool (where definitions are validated and compiled and plugin-calling steps run).
/// Expressions and JSON from callers are walked recursively; the core bounds their depth,
/// and this stack is what those bounds are sized against. 8 MiB, the size of a Linux main
/// thread, is four times tokio's default of 2 MiB; it is address space, and only the pages
/// a deep walk touches become resident.
const THREAD_STACK_BYTES: usize = 8 << 20;

fn serve(
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    config_file: Option<PathBuf>,
    log_format: Option<String>,
) -> std::io::Result<ExitCode> {
    use waystation_server::config::{Config, LogFormat};
    let mut config = match &config_file {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("waystation: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Config::default(),
    };
    if let Err(e) = config.apply_env(|k| std::env::var(k).ok()) {
        eprintln!("waystation: {e}");
        return Ok(ExitCode::from(2));
    }
    if let Some(l) = listen {
        config.listen = l;
    }
    if let Some(d) = data {
        config.data = d;
    }
    match log_format.as_deref() {
        None => {}
        Some("json") => config.log.format = LogFormat::Json,
        Some("text") => config.log.format = LogFormat::Text,
        Some(other) => {
            eprintln!("waystation: --log-format takes text or json, not {other}");
            return Ok(ExitCode::from(2));
        }
    }
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match config.log.format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    let engine =
        match waystation_server::open(&config, std::env::var("WAYSTATION_BOOTSTRAP_TOKEN").ok()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("waystation: {}", open_error(&e));
                return Ok(ExitCode::from(2));
            }
        };
    if let Some(secret) = &engine.bootstrap_secret {
        // Printed once, on the first start of a fresh data directory.
        println!("admin token (shown once, store it now): {secret}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        tracing::info!(address = %listener.local_addr()?, data = %config.data.display(), "waystation listening");
        waystation_server::run(listener, &engine, config.clone(), shutdown_signal()).await;
        Ok::<_, std::io::Error>(())
    })?;
    drop(engine);
    tracing::info!("waystation stopped; everything acknowledged is on disk");
    Ok(ExitCode::SUCCESS)
}

/// Why the store did not open, for the operator: what was being done, then each cause
/// once (a store error's text already holds its source's, which the chain would repeat).
fn open_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !previous.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        previous = text;
    }
    out
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
