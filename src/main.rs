use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = dpy::cli::Cli::parse();
    if let Err(e) = dpy::cli::run(cli).await {
        // The last gate before the terminal: an error can quote what the source image
        // wrote. Line breaks stay (a failed step's log tail is several lines); every
        // other control character is shown, not acted on.
        let message = e.to_string();
        let lines: Vec<String> = message
            .split('\n')
            .map(|line| dpy::terminal_text::sanitize(line).into_owned())
            .collect();
        eprintln!("dpy: error: {}", lines.join("\n"));
        std::process::exit(e.exit_code());
    }
}
