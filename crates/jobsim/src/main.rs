//! `jobsim --root DIR --listen ADDR`: serve a sandbox over HTTP until SIGTERM/SIGINT.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A BlueKing JOB simulator serving the sandbox at `--root`.
#[derive(Debug, Parser)]
#[command(name = "jobsim", version)]
struct Args {
    /// Sandbox root: `ROOT/hosts/<cloud>/<ip>/` are hosts, `ROOT/jobsim.toml` configures.
    #[arg(long)]
    root: PathBuf,
    /// Address to listen on; port 0 picks a free port. A non-loopback address needs
    /// `[[app]]` credentials in jobsim.toml, and only those are accepted there.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        writeln!(
            std::io::stderr(),
            "warning: jobsim on {} can be reached from other machines: it starts only with [[app]] credentials in jobsim.toml, and accepts only those (no tokens, signatures or anonymous calls)",
            args.listen
        )?;
    }
    let sim = plan_jobsim::JobSim::start(&args.root, args.listen).await?;
    {
        let mut out = std::io::stdout().lock();
        // The first line is a contract: callers read the real port from it.
        writeln!(out, "listening on {}", sim.base_url())?;
        out.flush()?;
    }
    shutdown_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
