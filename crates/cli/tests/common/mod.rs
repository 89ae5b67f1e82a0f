//! `blindledger dev` as a user runs it, driven through the `blindledger` binary: the ledger,
//! the controller and the audit service in one process, on SQLite in a temporary directory.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blindledger_test_support::{holds_within, until_blocking};

pub const BIN: &str = env!("CARGO_BIN_EXE_blindledger");

/// Runs the CLI `command`, printing `$ blindledger <shown>` and what it wrote (shown only when
/// the test fails); its output.
pub fn run_printed(mut command: Command, shown: &str) -> Output {
    let output = command.output().expect("the CLI runs");
    println!(
        "$ blindledger {shown}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A running `blindledger dev`; interrupted (Ctrl-C) when dropped.
pub struct Dev {
    pub child: Child,
    pub home: PathBuf,
    pub data: PathBuf,
    pub ledger: String,
    pub audit: String,
    pub controller: String,
    /// `host:port` of `/metrics` (the three services share one registry in `dev`).
    pub metrics: String,
    /// Every line `dev` printed on its standard output so far.
    pub printed: Arc<Mutex<Vec<String>>>,
}

/// How a test runs `dev` beyond the defaults.
#[derive(Default)]
pub struct DevOptions<'a> {
    /// `--output json`: addresses read from the `ready` event.
    pub json: bool,
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// Where its standard error goes (inherited when `None`).
    pub stderr: Option<File>,
}

impl Dev {
    /// Starts `dev`, reading its addresses from its text output, or from its `ready` event
    /// with `json` (`--output json`).
    pub fn start(dir: &Path, json: bool) -> Dev {
        Dev::start_with(
            dir,
            DevOptions {
                json,
                ..DevOptions::default()
            },
        )
    }

    /// Starts `dev` with `options`.
    pub fn start_with(dir: &Path, options: DevOptions) -> Dev {
        let json = options.json;
        let home = dir.join("home");
        let data = dir.join("data");
        // Started outside the source tree, as after `cargo install`: the shipped policy is
        // the one embedded in the binary, the data directory relative to where it runs.
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(["--output", if json { "json" } else { "text" }])
            .args(["dev", "--data-dir", "data"])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--controller-listen", "127.0.0.1:0"])
            .args(["--audit-listen", "127.0.0.1:0"])
            .env("BLINDLEDGER_HOME", &home)
            .env("BLINDLEDGER_LEDGER_METRICS_ADDR", "127.0.0.1:0")
            .env("BLINDLEDGER_LEDGER_FHE_THREADS", "2")
            .envs(options.env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(options.stderr.map_or_else(Stdio::inherit, Stdio::from))
            .spawn()
            .expect("blindledger dev starts");
        let printed = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut ledger = None;
        let mut audit = None;
        let mut metrics = None;
        let mut controller = None;
        for line in lines.by_ref() {
            let line = line.expect("dev prints its addresses");
            println!("dev: {line}");
            printed.lock().unwrap().push(line.clone());
            if json {
                let event: serde_json::Value =
                    serde_json::from_str(&line).expect("each line is a JSON event");
                if event["event"] == "ready" {
                    let text = |key: &str| event[key].as_str().map(str::to_string);
                    ledger = text("ledger");
                    audit = text("dashboard");
                    controller = text("controller");
                    metrics = text("metrics").and_then(|m| {
                        Some(
                            m.strip_prefix("http://")?
                                .strip_suffix("/metrics")?
                                .to_string(),
                        )
                    });
                    break;
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("controller at ") {
                controller = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(url) = line.strip_prefix("ledger listening on ") {
                ledger = Some(url.to_string());
            }
            if let Some(rest) = line.strip_prefix("metrics at http://") {
                metrics = rest.strip_suffix("/metrics").map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("dashboard at ") {
                audit = rest.split_whitespace().next().map(str::to_string);
            }
            if line.starts_with("press Ctrl-C") {
                break;
            }
        }
        // Keep reading, so what it prints at shutdown has somewhere to go.
        let kept = Arc::clone(&printed);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                println!("dev: {line}");
                kept.lock().unwrap().push(line);
            }
        });
        Dev {
            child,
            home,
            data,
            ledger: ledger.expect("the ledger's address is printed"),
            audit: audit.expect("the dashboard's address is printed"),
            controller: controller.expect("the controller's address is printed"),
            metrics: metrics.expect("the metrics address is printed"),
            printed,
        }
    }

    /// `GET /metrics` as Prometheus scrapes it; the body.
    pub fn scrape(&self) -> String {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&self.metrics).expect("metrics listen");
        let request = "GET /metrics HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_owned()
    }

    /// Runs a CLI verb against this instance.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(["--endpoint", &self.ledger])
            .args(args)
            .env("BLINDLEDGER_HOME", &self.home)
            .env("BLINDLEDGER_AUDIT", &self.audit)
            .env("BLINDLEDGER_CONTROLLER", &self.controller);
        run_printed(command, &args.join(" "))
    }

    /// Runs a CLI verb as someone else: another home directory, the same token.
    pub fn cli_from(&self, home: &Path, args: &[&str]) -> Output {
        let token = std::fs::read_to_string(self.home.join("token")).expect("dev wrote a token");
        let mut command = Command::new(BIN);
        command
            .args(["--endpoint", &self.ledger])
            .args(args)
            .env("BLINDLEDGER_HOME", home)
            .env("BLINDLEDGER_TOKEN", token.trim());
        let shown = format!("{} (home {})", args.join(" "), home.display());
        run_printed(command, &shown)
    }

    /// Runs a verb that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(output.status.success(), "blindledger {args:?} failed");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Repeats a deposit until its outcome is `wanted` (Ok: accepted; Err: refused with a
    /// message containing the text), as policy changes take a poll or two to arrive.
    pub fn deposit_until(&self, wanted: Result<(), &str>) {
        until_blocking(
            &format!("a deposit's outcome is {wanted:?}"),
            Duration::from_secs(30),
            || {
                let output = self.cli(&["deposit", "acme/alice", "1.00"]);
                let stderr = String::from_utf8_lossy(&output.stderr);
                match wanted {
                    Ok(()) => output.status.success(),
                    Err(text) => !output.status.success() && stderr.contains(text),
                }
            },
        );
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // Ctrl-C: the services shut down gracefully.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let child = &mut self.child;
        if !holds_within(Duration::from_secs(30), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
        }
    }
}
