use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = glbox::cli::Cli::parse();
    let result = glbox::cli::run(cli).await;
    glbox::log::finished(result.as_ref().map(|_| ()));
    if let Err(err) = result {
        eprintln!("error: {err}");
        // The log says what led here; the user may have said no on purpose.
        if let (Some(log), false) = (
            glbox::log::path(),
            matches!(err, glbox::error::Error::Declined),
        ) {
            eprintln!("The full log of this run: {}", log.display());
        }
        std::process::exit(err.exit_code());
    }
}
