use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = fundledger::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| cli.default_log_filter().into()),
        )
        .init();
    match fundledger::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fundledger: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
