use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = dpy::cli::Cli::parse();
    if let Err(e) = dpy::cli::run(cli).await {
        eprintln!("dpy: error: {e}");
        std::process::exit(e.exit_code());
    }
}
