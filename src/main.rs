//! The `watchkeeper` command line. Everything it does lives in the library; this
//! file parses arguments and the environment, sets up logging, and turns errors
//! into one clear sentence and a non-zero exit.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use watchkeeper::app::{self, Settings};
use watchkeeper::chat::slack::web::DEFAULT_API_URL;
use watchkeeper::slack_manifest::Delivery;
use watchkeeper::store;

/// Watchkeeper: support intake, status, on-call and playbooks over Slack.
#[derive(Parser)]
#[command(name = "watchkeeper", version, about)]
struct Cli {
    /// Configuration file (default: ./watchkeeper.yaml, else the bundled example).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://… (default) or postgres://….
    #[arg(long, global = true, env = "WATCHKEEPER_DATABASE_URL", default_value = store::DEFAULT_URL, hide_env_values = true)]
    database_url: String,
    /// Address to listen on.
    #[arg(
        long,
        global = true,
        env = "WATCHKEEPER_LISTEN",
        default_value = "127.0.0.1:3000"
    )]
    listen: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: Slack endpoints, webhooks, workers, /metrics.
    Serve,
    /// Talk to the bot on this terminal, as Slack would (SQLite, no Slack account).
    Console,
    /// Validate the configuration and the command manifest.
    Check,
    /// Apply pending database migrations.
    Migrate,
    /// Print the Slack app manifest derived from commands/.
    SlackManifest {
        /// Public base URL of this service, e.g. https://watchkeeper.example.com.
        #[arg(long, conflicts_with = "socket_mode")]
        url: Option<String>,
        /// Generate a Socket Mode manifest (no public URL needed).
        #[arg(long)]
        socket_mode: bool,
    },
    /// Print the JSON Schema of playbook files (playbooks/playbook.schema.json).
    PlaybookSchema,
    /// Print the Playbook CustomResourceDefinition (deploy/kubernetes/crd/).
    Crd,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if env("WATCHKEEPER_LOG_FORMAT").as_deref() == Some("json") {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = Settings {
        config: cli.config,
        database_url: cli.database_url,
        listen: cli.listen,
        signing_secret: env("SLACK_SIGNING_SECRET"),
        bot_token: env("SLACK_BOT_TOKEN"),
        app_token: env("SLACK_APP_TOKEN"),
        slack_api_url: env("SLACK_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string()),
        github_token: env("GITHUB_TOKEN"),
        github_api_url: env("GITHUB_API_URL"),
        github_webhook_secret: env("GITHUB_WEBHOOK_SECRET"),
        github_app_key: env("GITHUB_APP_PRIVATE_KEY"),
        alertmanager_token: env("ALERTMANAGER_TOKEN"),
    };
    let quiet = matches!(
        cli.command,
        Command::Console
            | Command::Check
            | Command::SlackManifest { .. }
            | Command::PlaybookSchema
            | Command::Crd
    );
    init_logging(if quiet { "warn" } else { "info" });
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("watchkeeper: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match command {
        Command::Serve => runtime.block_on(app::serve(settings))?,
        Command::Console => runtime.block_on(app::console(settings))?,
        Command::Check => println!("{}", app::check(&settings)?),
        Command::Migrate => {
            let applied = runtime.block_on(app::migrate(&settings))?;
            println!(
                "{}: {applied} migration(s) applied, schema up to date",
                store::redact(&settings.database_url)
            );
        }
        Command::SlackManifest { url, socket_mode } => {
            let delivery = match (url, socket_mode) {
                (Some(url), _) => Delivery::Http(url),
                (None, true) => Delivery::SocketMode,
                (None, false) => anyhow::bail!(
                    "say how Slack reaches the bot: --url https://your-host for HTTP, or --socket-mode"
                ),
            };
            let manifest = app::slack_manifest(&settings, &delivery)?;
            print!("{}", serde_yaml::to_string(&manifest)?);
        }
        Command::PlaybookSchema => print!("{}", watchkeeper::playbooks::model::json_schema_text()),
        Command::Crd => print!("{}", watchkeeper::playbooks::model::crd_yaml()),
    }
    Ok(())
}
