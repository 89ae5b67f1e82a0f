//! What every BlindLedger service process shares: how its configuration is loaded (defaults,
//! then a TOML file, then the service's own environment variables), its command line, and
//! its `main`.
//!
//! Each service has its own environment prefix (`BLINDLEDGER_LEDGER_`,
//! `BLINDLEDGER_CONTROLLER_`, `BLINDLEDGER_AUDIT_`), so that one service's variables never
//! configure another in a shared environment (a compose file, a developer's shell), and
//! the command-line client's own variables (`BLINDLEDGER_ENDPOINT`, `BLINDLEDGER_TOKEN`,
//! `BLINDLEDGER_TLS_CERT`...) configure no service.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The prefix the ledger and the controller read their variables under before each had its
/// own; such a variable left in a deployment now stops the start (see
/// [`ServiceConfig::FORMER_ENV_PREFIX`]).
pub const FORMER_SHARED_PREFIX: &str = "BLINDLEDGER_";

/// Variables of the command-line client under [`FORMER_SHARED_PREFIX`] that share a name
/// with a former service variable: a shell set up for the client may hold them, so they
/// are not taken for a forgotten service variable.
const CLIENT_VARIABLES: &[&str] = &["BLINDLEDGER_TLS_CERT", "BLINDLEDGER_TLS_KEY"];

/// A service's configuration: every field has a default, a TOML file may set any of them
/// (an unknown key there is an error), and `<ENV_PREFIX><KEY>` variables (the key upper
/// cased) override both. Nested values take figment's inline syntax in the environment:
/// `BLINDLEDGER_CONTROLLER_THRESHOLDS='{medium=0.6,high=0.7,blocked=0.8,margin=0.05}'`.
pub trait ServiceConfig: Default + Serialize + DeserializeOwned {
    /// The service's process name (`blindledger-ledger`).
    const SERVICE: &'static str;
    /// What the service does, one line for `--help`.
    const ABOUT: &'static str;
    /// The service's own environment prefix (`BLINDLEDGER_LEDGER_`).
    const ENV_PREFIX: &'static str;
    /// A prefix the service read its variables under before: any such variable for one
    /// of its keys fails the load with the variable's new name, instead of being ignored
    /// while the service starts on a default (its database URL, say).
    const FORMER_ENV_PREFIX: Option<&'static str> = None;

    /// Checks values that types alone cannot (ordered thresholds, ranges); the message
    /// says which key is wrong.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Every configuration key, as in a TOML file: the fields of the defaults, so the list
    /// cannot miss one.
    fn keys() -> Vec<String> {
        match serde_json::to_value(Self::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            // A configuration is a struct of named fields; anything else has no keys.
            _ => Vec::new(),
        }
    }

    /// Loads defaults, then `file` when given, then `<ENV_PREFIX><KEY>` variables, and
    /// checks the result.
    fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let keys = Self::keys();
        refuse_former_variables(Self::ENV_PREFIX, Self::FORMER_ENV_PREFIX, &keys)?;
        // Only the service's own keys are read from its prefix; files stay strict.
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let env = Env::prefixed(Self::ENV_PREFIX).only(&keys);
        checked(defaults_and_file::<Self>(file).merge(env))
    }

    /// Loads defaults and `file` only, ignoring the environment, and checks the result.
    fn from_file(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        checked(defaults_and_file::<Self>(file))
    }
}

fn defaults_and_file<C: ServiceConfig>(file: Option<&Path>) -> Figment {
    let figment = Figment::from(Serialized::defaults(C::default()));
    match file {
        Some(path) => figment.merge(Toml::file_exact(path)),
        None => figment,
    }
}

fn checked<C: ServiceConfig>(figment: Figment) -> Result<C, Box<figment::Error>> {
    let config: C = figment.extract()?;
    config
        .validate()
        .map_err(|message| Box::new(figment::Error::from(message)))?;
    Ok(config)
}

fn refuse_former_variables(
    prefix: &str,
    former: Option<&str>,
    keys: &[String],
) -> Result<(), Box<figment::Error>> {
    let Some(former) = former else {
        return Ok(());
    };
    let upper = |key: &str| key.to_ascii_uppercase();
    let stale: Vec<String> = keys
        .iter()
        .map(|key| format!("{former}{}", upper(key)))
        .filter(|name| !CLIENT_VARIABLES.contains(&name.as_str()))
        .filter(|name| std::env::var_os(name).is_some())
        .collect();
    match stale.first() {
        None => Ok(()),
        Some(name) => {
            let renamed = format!("{prefix}{}", &name[former.len()..]);
            let more = match stale.len() {
                1 => String::new(),
                n => format!(" ({} more such variables are set)", n - 1),
            };
            Err(Box::new(figment::Error::from(format!(
                "{name} is no longer read: set {renamed} instead{more}"
            ))))
        }
    }
}

/// The command line of a service binary: `--config FILE`, `--help` (listing the
/// configuration keys and their environment variables), `--version`.
#[derive(Debug, Clone)]
pub struct ServiceArgs {
    /// The configuration file, when given.
    pub config: Option<PathBuf>,
}

impl ServiceArgs {
    /// Parses the process's arguments for the service configured by `C`; exits on
    /// `--help`, `--version` or a usage error, as command lines do.
    pub fn parse<C: ServiceConfig>() -> ServiceArgs {
        let matches = clap::Command::new(C::SERVICE)
            .version(env!("CARGO_PKG_VERSION"))
            .about(C::ABOUT)
            .arg(
                clap::Arg::new("config")
                    .long("config")
                    .value_name("FILE")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("Configuration file (TOML); unknown keys in it are an error"),
            )
            .after_help(format!(
                "Configuration: defaults, then --config FILE, then environment variables \
                 {}<KEY> (upper case). Keys: {}.\n\nSIGTERM or SIGINT (Ctrl-C) \
                 stops it gracefully: new calls are refused, running work finishes (for at \
                 most shutdown_grace_ms) or is released, then it exits 0.",
                C::ENV_PREFIX,
                C::keys().join(", ")
            ))
            .get_matches();
        ServiceArgs {
            config: matches.get_one::<PathBuf>("config").cloned(),
        }
    }
}

/// A service as a process runs it: built from its configuration with its ports bound,
/// then run until asked to stop.
pub trait Service: Sized {
    /// The service's configuration.
    type Config: ServiceConfig;

    /// Connects, migrates and binds the ports.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>>;

    /// The address of the service's API (gRPC or HTTP).
    fn listen_addr(&self) -> SocketAddr;

    /// The address of `/metrics`, when it has its own.
    fn metrics_addr(&self) -> Option<SocketAddr>;

    /// Serves until `shutdown` resolves, then stops gracefully.
    fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>>;
}

/// The `main` of every service binary: logs and traces set up, the command line parsed,
/// the configuration loaded, the service built; then `metrics <addr>` (when configured)
/// and `listening <addr>` printed on stdout once the ports are bound, for supervisors and
/// tests; then served until SIGTERM or SIGINT.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    let service = S::Config::SERVICE;
    blindledger_telemetry::service_main(service, async {
        let args = ServiceArgs::parse::<S::Config>();
        let config = S::Config::load(args.config.as_deref()).context("loading configuration")?;
        let app = S::build(config).await?;
        if let Some(metrics) = app.metrics_addr() {
            println!("metrics {metrics}");
        }
        println!("listening {}", app.listen_addr());
        app.run_until(blindledger_telemetry::shutdown_signal())
            .await
    })
    .await
}

#[cfg(test)]
// figment's `Jail` returns figment's own (large) error type from its closures.
#[allow(clippy::result_large_err)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        listen_addr: String,
        workers: u32,
        tls_cert: Option<String>,
        limits: Limits,
    }

    #[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
    struct Limits {
        low: u32,
        high: u32,
    }

    impl Default for Sample {
        fn default() -> Self {
            Sample {
                listen_addr: "127.0.0.1:1".into(),
                workers: 4,
                tls_cert: None,
                limits: Limits { low: 1, high: 2 },
            }
        }
    }

    impl ServiceConfig for Sample {
        const SERVICE: &'static str = "blindledger-sample";
        const ABOUT: &'static str = "A sample service.";
        const ENV_PREFIX: &'static str = "BLINDLEDGER_SAMPLE_";
        const FORMER_ENV_PREFIX: Option<&'static str> = Some(FORMER_SHARED_PREFIX);

        fn validate(&self) -> Result<(), String> {
            if self.limits.low > self.limits.high {
                return Err("limits: low must not exceed high".into());
            }
            Ok(())
        }
    }

    fn load_in(jail: &figment::Jail) -> Result<Sample, Box<figment::Error>> {
        Sample::load(Some(&jail.directory().join("sample.toml")))
    }

    #[test]
    fn keys_are_the_fields() {
        assert_eq!(
            Sample::keys(),
            ["limits", "listen_addr", "tls_cert", "workers"]
        );
    }

    #[test]
    fn the_service_prefix_overrides_the_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sample.toml", "workers = 7\nlisten_addr = \"0.0.0.0:9\"\n")?;
            jail.set_env("BLINDLEDGER_SAMPLE_WORKERS", "9");
            jail.set_env("BLINDLEDGER_SAMPLE_LIMITS", "{low=3,high=5}");
            // Another service's variables and unknown keys under the prefix are not read.
            jail.set_env("BLINDLEDGER_OTHER_WORKERS", "11");
            jail.set_env("BLINDLEDGER_SAMPLE_UNKNOWN", "1");
            let config = load_in(jail).unwrap();
            assert_eq!(config.workers, 9);
            assert_eq!(config.listen_addr, "0.0.0.0:9");
            assert_eq!(config.limits, Limits { low: 3, high: 5 });
            Ok(())
        });
    }

    #[test]
    fn a_variable_under_the_former_prefix_stops_the_load_naming_its_new_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sample.toml", "")?;
            jail.set_env("BLINDLEDGER_WORKERS", "2");
            let message = load_in(jail).unwrap_err().to_string();
            assert!(
                message.contains("BLINDLEDGER_WORKERS is no longer read")
                    && message.contains("set BLINDLEDGER_SAMPLE_WORKERS instead"),
                "{message}"
            );
            jail.set_env("BLINDLEDGER_LISTEN_ADDR", "x");
            let message = load_in(jail).unwrap_err().to_string();
            assert!(
                message.contains("(1 more such variables are set)"),
                "{message}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_clients_own_variables_and_other_names_are_not_taken_for_former_ones() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sample.toml", "")?;
            jail.set_env("BLINDLEDGER_TLS_CERT", "client.crt");
            jail.set_env("BLINDLEDGER_ENDPOINT", "http://127.0.0.1:1");
            let config = load_in(jail).unwrap();
            assert_eq!(config.tls_cert, None);
            Ok(())
        });
    }

    #[test]
    fn files_reject_unknown_keys_and_invalid_values() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sample.toml", "workers = 3\nworkerz = 4\n")?;
            let message = load_in(jail).unwrap_err().to_string();
            assert!(message.contains("workerz"), "{message}");
            jail.create_file("sample.toml", "[limits]\nlow = 9\nhigh = 2\n")?;
            let message = load_in(jail).unwrap_err().to_string();
            assert!(message.contains("low must not exceed high"), "{message}");
            jail.create_file("sample.toml", "workers = 3\n")?;
            assert_eq!(load_in(jail).unwrap().workers, 3);
            Ok(())
        });
    }

    #[test]
    fn from_file_ignores_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sample.toml", "workers = 5\n")?;
            jail.set_env("BLINDLEDGER_SAMPLE_WORKERS", "9");
            jail.set_env("BLINDLEDGER_WORKERS", "2");
            let path = jail.directory().join("sample.toml");
            assert_eq!(Sample::from_file(Some(&path)).unwrap().workers, 5);
            Ok(())
        });
    }
}
