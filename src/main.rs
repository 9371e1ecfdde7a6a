use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = glbox::cli::Cli::parse();
    let result = glbox::cli::run(cli).await;
    glbox::log::finished(result.as_ref().map(|_| ()));
    if let Err(err) = result {
        eprintln!("error: {err}");
        // The log says what led here; a "no" to the question needs none.
        if !matches!(err, glbox::error::Error::Declined) {
            glbox::log::print_path();
        }
        std::process::exit(err.exit_code());
    }
}
