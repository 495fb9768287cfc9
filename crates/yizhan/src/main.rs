//! The `yizhan` binary: parses the command line and hands over to the
//! library crates. Nothing here holds a business rule.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api_bench;
mod app;
mod booking_bench;
mod credit_cmd;
mod demo;
mod demo_city;
mod key_cmd;
mod ledger_cmd;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "yizhan",
    version,
    about = "yizhan (一站): an open, self-hostable super app — one account, one wallet, every service of a city."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives; every command that touches data takes these.
#[derive(Args, Clone, Debug)]
pub struct DataOpts {
    /// Data directory: the embedded SQLite database and the secret key live here.
    #[arg(long, env = "YIZHAN_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Use this database instead of the embedded SQLite file (postgres://… or sqlite://…).
    #[arg(long, env = "YIZHAN_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (pages, JSON API, OpenAPI document, health and metrics).
    Serve {
        #[command(flatten)]
        data: DataOpts,
        /// Address to listen on.
        #[arg(long, env = "YIZHAN_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
        /// Mark cookies Secure (when served behind HTTPS).
        #[arg(long, env = "YIZHAN_SECURE_COOKIES", default_value_t = false)]
        secure_cookies: bool,
    },
    /// Apply the database migrations and exit (serve also does this at start).
    Migrate {
        #[command(flatten)]
        data: DataOpts,
    },
    /// Seed a demo city with organisations and users, and print their logins.
    Demo {
        #[command(flatten)]
        data: DataOpts,
    },
    /// Administration: create platform administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The secret key: rotate it (stop every server first).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The ledger: check that the books balance.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// The credit score: recompute every opted-in person's score.
    Credit {
        #[command(subcommand)]
        command: CreditCommand,
    },
    /// Benchmarks (measure speed here, never in tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Move every sealed identity number, blind index and access-log seal to
    /// a new key in one transaction, then make the new key the data
    /// directory's (secret.key; the old one becomes secret.key.previous).
    /// With YIZHAN_SECRET_KEY, the new key goes to --new-key-out instead.
    /// YIZHAN_NEW_SECRET_KEY gives the new key; by default one is generated.
    Rotate {
        #[command(flatten)]
        data: DataOpts,
        /// Where to write the new key (required when the key comes from YIZHAN_SECRET_KEY).
        #[arg(long)]
        new_key_out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Prove the books balance: the sum of all balances is zero and every
    /// balance equals the sum of its transfers. Exits 1 on any mismatch.
    Check {
        #[command(flatten)]
        data: DataOpts,
    },
    /// Make payments until killed, printing each acknowledged transfer (used by the crash test).
    #[command(hide = true)]
    Load {
        #[command(flatten)]
        data: DataOpts,
        #[arg(long, default_value_t = 50)]
        accounts: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

#[derive(Subcommand)]
enum CreditCommand {
    /// Recompute every opted-in person's score now (after a model change, or
    /// as records leave their windows), with a progress bar.
    Recompute {
        #[command(flatten)]
        data: DataOpts,
    },
    /// A new model version: stage it, compare it with the active one, activate it.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Check a model file and store it by its content hash; the active model keeps scoring.
    Stage {
        #[command(flatten)]
        data: DataOpts,
        file: PathBuf,
    },
    /// Both scores side by side for a sample of opted-in people, the shift per band.
    Compare {
        #[command(flatten)]
        data: DataOpts,
        #[arg(long, default_value_t = 10_000)]
        sample: u64,
    },
    /// Make a stored model (by its hash) the one that scores; stored scores keep theirs.
    Activate {
        #[command(flatten)]
        data: DataOpts,
        hash: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Seed synthetic opted-in residents with records (once), recompute every
    /// score `--runs` times (the synthetic scores deleted before each run),
    /// print residents per second for each run, the median and the spread
    /// (the synthetic rows are removed afterwards unless `--keep`).
    Credit {
        #[command(flatten)]
        data: DataOpts,
        #[arg(long, default_value_t = 1_000_000)]
        residents: u64,
        /// Records per resident.
        #[arg(long, default_value_t = 20)]
        records: u64,
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Leave the synthetic residents in place (a next run with the same counts reuses them).
        #[arg(long)]
        keep: bool,
    },
    /// Mixed payment load on the ledger: transfers between random wallets, a
    /// share of them into one hot merchant account. Prints durable transfers
    /// per second and p50/p99 latency for each run, then the median and spread.
    /// Without --data-dir or --database-url it measures a fresh SQLite file.
    Ledger {
        #[command(flatten)]
        data: DataOpts,
        /// Wallets paying each other.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// Payments per run.
        #[arg(long, default_value_t = 200_000)]
        transfers: usize,
        /// Payers waiting for their answer at once.
        #[arg(long, default_value_t = 16_384)]
        concurrency: usize,
        /// Percent of payments into the one hot merchant account.
        #[arg(long, default_value_t = 20)]
        hot_share: u32,
        /// Runs; the median and the spread are printed at the end.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Give every payment an idempotency key (checked in the same batch).
        #[arg(long, default_value_t = false)]
        idempotency_keys: bool,
        /// In each run measure the ledger without keys, with keys, and a plain
        /// one-transaction-per-payment program on the same database, side by side.
        #[arg(long, default_value_t = false)]
        compare_plain: bool,
    },
    /// Payments over real HTTP: a server process on a fresh database, funded
    /// people logged in, load clients in separate processes posting
    /// `/api/v1/transfers` with unique Idempotency-Keys for a fixed time.
    /// Prints paid requests/s, p50/p99/p999 and non-2xx by status per run,
    /// the median and spread, then checks every acknowledged payment is in the
    /// ledger once and the ledger check is clean.
    ApiPay(ApiPayOpts),
    /// The 7 a.m. rush over real HTTP: a server process on a fresh database,
    /// people logged in, and per run 1,000 places released at one instant
    /// that load clients in separate processes try to book 100,000 times.
    /// Prints attempts/s, p50/p99 and how long after the release the last
    /// attempt was answered per run, the median and spread, and checks that
    /// exactly the places were booked, nobody twice.
    Booking(BookingOpts),
    /// One load process of `booking` (started by it).
    #[command(hide = true)]
    BookingClient {
        #[arg(long)]
        plan: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// One load process of `api-pay` (started by it).
    #[command(hide = true)]
    ApiPayClient {
        #[arg(long)]
        plan: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        acks: PathBuf,
    },
}

#[derive(Args, Debug)]
struct BookingOpts {
    /// People trying to book (each logs in over HTTP).
    #[arg(long, default_value_t = 5_000)]
    people: usize,
    /// Booking attempts per run, from all load processes together.
    #[arg(long, default_value_t = 100_000)]
    attempts: usize,
    /// Places released at one instant.
    #[arg(long, default_value_t = 1_000)]
    places: usize,
    /// Load-generating processes (each holds its share of the connections and people).
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// HTTP connections in all, each one attempt at a time.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Runs; the median and the spread are printed at the end.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measure on this PostgreSQL server (a database is made and dropped);
    /// without it, a fresh SQLite file.
    #[arg(long)]
    postgres: Option<String>,
}

#[derive(Args, Debug)]
struct ApiPayOpts {
    /// Funded people paying each other.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Load-generating processes (each holds its share of the connections).
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// HTTP connections in all, each one payment at a time.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Runs; the median and the spread are printed at the end.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Percent of payments into one hot payee.
    #[arg(long, default_value_t = 0)]
    hot_share: u32,
    /// Percent of requests that repeat the previous payment with its key.
    #[arg(long, default_value_t = 0)]
    retry_share: u32,
    /// Measure on this PostgreSQL server (a database is made and dropped);
    /// without it, a fresh SQLite file.
    #[arg(long)]
    postgres: Option<String>,
    /// The crash test: SIGKILL the server this many seconds into the load
    /// (one run), then check every acknowledged payment is in the ledger once.
    #[arg(long)]
    kill_after: Option<u64>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a platform administrator, or promote an existing login when the
    /// password given is that account's own.
    Create {
        #[command(flatten)]
        data: DataOpts,
        #[arg(long)]
        login: String,
        /// The password; read from YIZHAN_ADMIN_PASSWORD when not given.
        #[arg(long, env = "YIZHAN_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

fn init_tracing(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("YIZHAN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if std::env::var("YIZHAN_LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt().with_env_filter(filter).json().with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A benchmark's own output is its figures; its log says only what went wrong.
    init_tracing(if matches!(cli.command, Command::Bench { .. }) { "warn,sqlx=warn" } else { "info,sqlx=warn" });
    match cli.command {
        Command::Serve { data, addr, secure_cookies } => app::serve(&data, &addr, secure_cookies).await,
        Command::Migrate { data } => {
            let built = app::build(&data, false).await?;
            println!("migrations applied ({})", built.state.ctx.db.engine().name());
            Ok(())
        }
        Command::Demo { data } => demo::run(&data).await,
        Command::Admin { command: AdminCommand::Create { data, login, password, name } } => {
            let built = app::build(&data, false).await?;
            let id = built.state.identity.ensure_admin(&login, &password, &name).await.map_err(app::explain)?;
            println!("platform administrator {login} ({id})");
            Ok(())
        }
        Command::Key { command: KeyCommand::Rotate { data, new_key_out } } => {
            key_cmd::rotate(&data, new_key_out.as_deref()).await
        }
        Command::Ledger { command: LedgerCommand::Check { data } } => {
            if ledger_cmd::check(&data).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Ledger { command: LedgerCommand::Load { data, accounts, concurrency } } => {
            ledger_cmd::load(&data, accounts, concurrency).await
        }
        Command::Credit { command: CreditCommand::Recompute { data } } => credit_cmd::recompute(&data).await,
        Command::Credit { command: CreditCommand::Model { command: ModelCommand::Stage { data, file } } } => {
            credit_cmd::stage(&data, &file).await
        }
        Command::Credit { command: CreditCommand::Model { command: ModelCommand::Compare { data, sample } } } => {
            credit_cmd::compare(&data, sample).await
        }
        Command::Credit { command: CreditCommand::Model { command: ModelCommand::Activate { data, hash } } } => {
            credit_cmd::activate(&data, &hash).await
        }
        Command::Bench { command: BenchCommand::Credit { data, residents, records, runs, keep } } => {
            credit_cmd::bench(&data, residents, records, runs.max(1), keep).await
        }
        Command::Bench { command: BenchCommand::ApiPay(o) } => {
            api_bench::run(api_bench::ApiPayArgs {
                users: o.users.max(2),
                seconds: o.seconds.max(1),
                clients: o.clients.max(1),
                connections: o.connections.max(1),
                runs: if o.kill_after.is_some() { 1 } else { o.runs.max(1) },
                hot_share_pct: o.hot_share.min(100),
                retry_share_pct: o.retry_share.min(100),
                postgres: o.postgres,
                kill_after: o.kill_after,
            })
            .await
        }
        Command::Bench { command: BenchCommand::Booking(o) } => {
            booking_bench::run(booking_bench::BookingBenchArgs {
                people: o.people.max(1),
                attempts: o.attempts,
                places: o.places.max(1),
                clients: o.clients.max(1),
                connections: o.connections.max(1),
                runs: o.runs.max(1),
                postgres: o.postgres,
            })
            .await
        }
        Command::Bench { command: BenchCommand::BookingClient { plan, out } } => {
            booking_bench::client(&plan, &out).await
        }
        Command::Bench { command: BenchCommand::ApiPayClient { plan, out, acks } } => {
            api_bench::client(&plan, &out, &acks).await
        }
        Command::Bench {
            command:
                BenchCommand::Ledger {
                    data,
                    accounts,
                    transfers,
                    concurrency,
                    hot_share,
                    runs,
                    idempotency_keys,
                    compare_plain,
                },
        } => {
            let explicit_dir = std::env::args().any(|a| a == "--data-dir" || a.starts_with("--data-dir="))
                || std::env::var_os("YIZHAN_DATA_DIR").is_some();
            let args = ledger_cmd::BenchArgs {
                accounts,
                transfers,
                concurrency,
                hot_share_pct: hot_share,
                runs: runs.max(1),
                idempotency_keys,
                compare_plain,
            };
            ledger_cmd::bench(&data, explicit_dir, args).await
        }
    }
}
