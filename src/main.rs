use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = glbox::cli::Cli::parse();
    if let Err(err) = glbox::cli::run(cli).await {
        eprintln!("error: {err}");
        std::process::exit(err.exit_code());
    }
}
