//! No plaintext amount leaves the client. A workload with distinctive amounts and balances
//! runs through `blindledger dev` (the ledger, the controller and the audit service in one
//! process) with debug logging and every span exported over OTLP; then every log line, every
//! metric, every exported span, every column of every table, every file under the data
//! directory, the dashboard's pages, the CSV export, the audit API and the controller's API
//! are searched for each amount and balance in every form a bug would print it: decimal with
//! and without the point, grouped, minor units, hex, and its bytes (little- and big-endian,
//! as a Rust byte list, as a protobuf varint, as a float).
//!
//! The search proves it can find one: a value planted in the tenant's name is found where
//! names go (the tables, the dashboard, the logs, the spans), and each form of each value is
//! found in synthetic text and bytes.
//!
//! Its own test binary: the spans of the CLI runs are exported to the same collector through
//! the environment they inherit.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aho_corasick::AhoCorasick;
use blindledger_test_support::{until_blocking, SpanCollector};
use common::{Dev, DevOptions};

/// A value the client knows and no service may hold in the clear, in minor units.
struct Secret {
    what: &'static str,
    minor: u64,
}

/// Deposits, a transfer, a withdrawal and the balances they leave (a 32-bit ledger holds
/// them all): alice 4,242,424.17 − 1,212,121.14 = 3,030,303.03; bob 9,131,313.03 +
/// 1,212,121.14 − 2,121,212.12 = 8,222,222.05.
const SECRETS: [Secret; 6] = [
    Secret {
        what: "alice's deposit",
        minor: 424_242_417,
    },
    Secret {
        what: "bob's deposit",
        minor: 913_131_303,
    },
    Secret {
        what: "the transfer",
        minor: 121_212_114,
    },
    Secret {
        what: "bob's withdrawal",
        minor: 212_121_212,
    },
    Secret {
        what: "alice's balance",
        minor: 303_030_303,
    },
    Secret {
        what: "bob's balance",
        minor: 822_222_205,
    },
];

/// Planted in the tenant's name: not a secret, so it must be found where names go (the
/// tables, the dashboard, the log line that registers the tenant's keys, its span event).
const PLANTED: u64 = 565_656_565;
const TENANT: &str = "bank565656565";

/// What may stand next to a textual form for it to count as that value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Edge {
    /// Not inside a longer number: no ASCII digit on either side.
    Digits,
    /// Not inside a longer hex string (a digest, a trace id): no hex digit on either side.
    Hex,
    /// Bytes: anywhere.
    Anywhere,
}

/// One way a value could be printed or stored.
struct Form {
    name: &'static str,
    bytes: Vec<u8>,
    edge: Edge,
    /// Short binary forms (4 or 5 bytes) occur by chance in large random data (ciphertexts,
    /// keys): they are searched in text, in spans and as a whole stored value, not inside
    /// stored blobs.
    short: bool,
}

fn group_thousands(units: u64) -> String {
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return bytes;
        }
        bytes.push(low | 0x80);
    }
}

/// Every form of `minor` the search looks for.
fn forms(minor: u64) -> Vec<Form> {
    let (units, cents) = (minor / 100, minor % 100);
    let text = |name, s: String, edge| Form {
        name,
        bytes: s.into_bytes(),
        edge,
        short: false,
    };
    let bytes = |name, b: Vec<u8>, short| Form {
        name,
        bytes: b,
        edge: Edge::Anywhere,
        short,
    };
    let as_u32 = u32::try_from(minor).expect("the values fit a 32-bit ledger");
    let le_list = format!("{:?}", minor.to_le_bytes());
    #[allow(clippy::cast_precision_loss)]
    let as_float = minor as f64 / 100.0;
    vec![
        text("decimal", format!("{units}.{cents:02}"), Edge::Digits),
        text(
            "grouped decimal",
            format!("{}.{cents:02}", group_thousands(units)),
            Edge::Digits,
        ),
        text("minor units", minor.to_string(), Edge::Digits),
        text("hex", format!("{minor:x}"), Edge::Hex),
        text("upper-case hex", format!("{minor:X}"), Edge::Hex),
        // `[241, 74, 73, 25`: the start of a byte array's Debug form, 4 or 8 bytes long.
        text(
            "little-endian bytes as a list",
            le_list[..le_list.len() - ", 0, 0, 0, 0]".len()].to_string(),
            Edge::Anywhere,
        ),
        bytes("u64 little-endian", minor.to_le_bytes().to_vec(), false),
        bytes("u64 big-endian", minor.to_be_bytes().to_vec(), false),
        bytes("f64 little-endian", as_float.to_le_bytes().to_vec(), false),
        bytes("u32 little-endian", as_u32.to_le_bytes().to_vec(), true),
        bytes("u32 big-endian", as_u32.to_be_bytes().to_vec(), true),
        bytes("protobuf varint", varint(minor), true),
    ]
}

/// How an artefact is searched.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Logs, metrics, pages, API answers, spans: every form anywhere.
    Emitted,
    /// A stored value or file: every form, short binary forms only as the whole value.
    Stored,
}

/// Something the services emitted or stored.
struct Artefact {
    source: String,
    kind: Kind,
    bytes: Vec<u8>,
}

/// One finding: which value, in which form, where, with a bounded excerpt.
#[derive(Debug)]
struct Hit {
    value: u64,
    form: &'static str,
    source: String,
    excerpt: String,
}

/// Searches for values in every form.
struct Scanner {
    values: Vec<u64>,
    /// (value index, form) per pattern of `automaton`.
    patterns: Vec<(usize, Form)>,
    automaton: AhoCorasick,
}

impl Scanner {
    fn new(values: &[u64]) -> Scanner {
        let patterns: Vec<(usize, Form)> = values
            .iter()
            .enumerate()
            .flat_map(|(i, &v)| forms(v).into_iter().map(move |f| (i, f)))
            .collect();
        let automaton = AhoCorasick::new(patterns.iter().map(|(_, f)| &f.bytes)).unwrap();
        Scanner {
            values: values.to_vec(),
            patterns,
            automaton,
        }
    }

    fn scan(&self, artefact: &Artefact) -> Vec<Hit> {
        let haystack = &artefact.bytes;
        let mut hits = Vec::new();
        let mut found = |index: usize, start: usize, end: usize| {
            let (value, form) = &self.patterns[index];
            let excerpt_start = start.saturating_sub(40);
            let excerpt_end = (end + 40).min(haystack.len());
            hits.push(Hit {
                value: self.values[*value],
                form: form.name,
                source: artefact.source.clone(),
                excerpt: String::from_utf8_lossy(&haystack[excerpt_start..excerpt_end])
                    .escape_debug()
                    .to_string(),
            });
        };
        for m in self.automaton.find_overlapping_iter(haystack.as_slice()) {
            let form = &self.patterns[m.pattern().as_usize()].1;
            if artefact.kind == Kind::Stored && form.short {
                continue;
            }
            let before = m.start().checked_sub(1).map(|i| haystack[i]);
            let after = haystack.get(m.end()).copied();
            let clear = |edge: fn(&u8) -> bool| {
                !before.is_some_and(|b| edge(&b)) && !after.is_some_and(|b| edge(&b))
            };
            let counts = match form.edge {
                Edge::Digits => clear(u8::is_ascii_digit),
                Edge::Hex => clear(u8::is_ascii_hexdigit),
                Edge::Anywhere => true,
            };
            if counts {
                found(m.pattern().as_usize(), m.start(), m.end());
            }
        }
        if artefact.kind == Kind::Stored {
            for (index, (_, form)) in self.patterns.iter().enumerate() {
                if form.short && *haystack == form.bytes {
                    found(index, 0, haystack.len());
                }
            }
        }
        hits
    }
}

#[test]
fn the_scanner_finds_every_form_of_a_value() {
    let scanner = Scanner::new(&[PLANTED]);
    for form in forms(PLANTED) {
        let mut padded = b"noise: ".to_vec();
        padded.extend_from_slice(&form.bytes);
        padded.extend_from_slice(b" :noise");
        let kind = if form.short {
            Kind::Emitted
        } else {
            Kind::Stored
        };
        let hits = scanner.scan(&Artefact {
            source: "synthetic".into(),
            kind,
            bytes: padded,
        });
        assert!(
            hits.iter().any(|h| h.form == form.name),
            "{} not found: {hits:?}",
            form.name
        );
        // A short binary form stored as a whole value.
        if form.short {
            let hits = scanner.scan(&Artefact {
                source: "synthetic column".into(),
                kind: Kind::Stored,
                bytes: form.bytes.clone(),
            });
            assert!(hits.iter().any(|h| h.form == form.name), "{}", form.name);
        }
    }
    // Inside a longer number or hex string it is another value.
    for inside in ["75656565656510", "ab21b7c4f5ff", "0.5656565651"] {
        let hits = scanner.scan(&Artefact {
            source: "synthetic".into(),
            kind: Kind::Emitted,
            bytes: inside.as_bytes().to_vec(),
        });
        assert!(
            hits.iter().all(|h| h.form.contains("bytes")),
            "{inside}: {hits:?}"
        );
    }
    assert_eq!(group_thousands(5_656_565), "5,656,565");
    assert_eq!(group_thousands(565), "565");
    assert_eq!(varint(300), vec![0xac, 0x02]);
}

/// Formats minor units as the CLI takes and prints amounts.
fn amount(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Every value of every column of every table of the SQLite database at `path`.
async fn table_values(path: &Path) -> Vec<Artefact> {
    use sqlx::{ConnectOptions as _, Row as _};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut values = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
        for column in columns {
            // CAST AS BLOB: text as stored, numbers as their decimal text.
            let rows: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&format!(
                "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""
            ))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for (i, value) in rows.into_iter().enumerate() {
                if let Some(bytes) = value {
                    values.push(Artefact {
                        source: format!("table {table}, column {column}, row {i}"),
                        kind: Kind::Stored,
                        bytes,
                    });
                }
            }
        }
    }
    values
}

/// `GET url` with `token` as the dashboard's session cookie (and bearer token).
async fn send(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    client
        .get(url)
        .header("cookie", format!("bl_audit_session={token}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `GET url` with `token`; the status and body.
async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, Vec<u8>) {
    let response = send(client, url, token).await;
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// The dashboard's live stream (`GET /events`, Server-Sent Events), read as it arrives
/// until the task is aborted.
async fn follow_live_stream(url: String, token: String, into: Arc<Mutex<Vec<u8>>>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut response = send(&reqwest::Client::new(), &url, &token).await;
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    while let Some(chunk) = response.chunk().await.unwrap() {
        into.lock().unwrap().extend_from_slice(&chunk);
    }
}

/// The dashboard's pages (each transaction's too), the CSV export, the audit API and the
/// controller's API, read with the dev token.
async fn served(dev: &Dev, token: &str) -> Vec<Artefact> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let audit = dev.audit.trim_end_matches('/').to_string();
    let controller = dev.controller.trim_end_matches('/').to_string();
    let mut urls: Vec<String> = [
        "/",
        "/decisions",
        "/transactions",
        "/attention",
        "/risk",
        "/bundles",
        "/export.csv",
        "/api/audit/verify",
        "/api/audit/checkpoints",
        "/api/policy-data",
    ]
    .iter()
    .map(|path| format!("{audit}{path}"))
    .collect();
    let (_, listing) = get(&client, &format!("{audit}/transactions"), token).await;
    let listing = String::from_utf8_lossy(&listing).to_string();
    let jobs: BTreeSet<&str> = listing
        .split("href=\"/transactions/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(jobs.len() >= 4, "the dashboard lists the jobs: {listing}");
    urls.extend(jobs.iter().map(|id| format!("{audit}/transactions/{id}")));
    urls.extend(
        ["/v1/risk/scores", "/v1/policy/history"]
            .iter()
            .map(|path| format!("{controller}{path}")),
    );
    let mut artefacts = Vec::new();
    for url in urls {
        let (status, body) = get(&client, &url, token).await;
        assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
        artefacts.push(Artefact {
            source: format!("GET {url}"),
            kind: Kind::Emitted,
            bytes: body,
        });
    }
    artefacts
}

#[test]
fn no_amount_or_balance_appears_in_anything_the_services_emit_or_store() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let collector = runtime.block_on(SpanCollector::start());
    // The CLI runs below export their spans too, from the environment they inherit.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint);
    let stderr_path = dir.path().join("dev.stderr");
    let dev = Dev::start_with(
        dir.path(),
        DevOptions {
            env: &[("RUST_LOG", "debug")],
            stderr: Some(File::create(&stderr_path).unwrap()),
            ..DevOptions::default()
        },
    );

    let token = std::fs::read_to_string(dev.home.join("token")).unwrap();
    let token = token.trim().to_owned();
    let live = Arc::new(Mutex::new(Vec::new()));
    let stream = runtime.spawn(follow_live_stream(
        format!("{}/events", dev.audit.trim_end_matches('/')),
        token.clone(),
        Arc::clone(&live),
    ));

    dev.ok(&["keys", "new", "--tenant", TENANT, "--width", "32"]);
    let alice = format!("{TENANT}/alice");
    let bob = format!("{TENANT}/bob");
    for account in [&alice, &bob] {
        dev.ok(&["account", "open", account]);
    }
    let [alice_in, bob_in, moved, taken, alice_left, bob_left] = SECRETS.map(|s| s.minor);
    dev.ok(&["deposit", &alice, &amount(alice_in), "--wait"]);
    dev.ok(&["deposit", &bob, &amount(bob_in), "--wait"]);
    dev.ok(&["transfer", &alice, &bob, &amount(moved), "--wait"]);
    dev.ok(&["withdraw", &bob, &amount(taken), "--wait"]);
    assert_eq!(dev.ok(&["balance", &alice]).trim(), amount(alice_left));
    assert_eq!(dev.ok(&["balance", &bob]).trim(), amount(bob_left));
    let sums = dev.ok(&["aggregate", &alice, "--threshold", "1000000.00", "--wait"]);
    assert!(sums.contains(&amount(moved)), "{sums}");
    dev.ok(&["transfers", &alice]);
    // The audit service imports the ledger's decisions and jobs on its own schedule.
    until_blocking(
        "the audit trail holds the workload's jobs",
        Duration::from_secs(60),
        || {
            let export = dir.path().join("trail.csv");
            dev.ok(&["audit", "export", "-o", export.to_str().unwrap()]);
            let csv = std::fs::read_to_string(&export).unwrap();
            ["Deposit", "Transfer", "Withdraw"]
                .iter()
                .all(|rpc| csv.contains(rpc))
        },
    );

    let mut artefacts = runtime.block_on(served(&dev, &token));
    stream.abort();
    let live = std::mem::take(&mut *live.lock().unwrap());
    assert!(
        String::from_utf8_lossy(&live).contains("event: decision"),
        "the live stream carried the workload's decisions"
    );
    artefacts.push(Artefact {
        source: "GET /events (the live stream)".into(),
        kind: Kind::Emitted,
        bytes: live,
    });
    artefacts.push(Artefact {
        source: "GET /metrics".into(),
        kind: Kind::Emitted,
        bytes: dev.scrape().into_bytes(),
    });
    let data = dev.data.clone();
    let printed = Arc::clone(&dev.printed);
    // Stopped: its buffered spans are exported, its files closed.
    drop(dev);
    artefacts.push(Artefact {
        source: "dev's standard output".into(),
        kind: Kind::Emitted,
        bytes: printed.lock().unwrap().join("\n").into_bytes(),
    });
    let logs = std::fs::read(&stderr_path).unwrap();
    let log_text = String::from_utf8_lossy(&logs).to_string();
    assert!(
        log_text.contains("DEBUG"),
        "debug logging was on:\n{log_text}"
    );
    artefacts.push(Artefact {
        source: "dev's log (standard error, RUST_LOG=debug)".into(),
        kind: Kind::Emitted,
        bytes: logs,
    });
    let spans = collector.spans();
    for name in ["fhe.compute", "job", "cli.command", "policy.authorize"] {
        assert!(
            spans.iter().any(|s| s.name == name),
            "a {name} span was exported"
        );
    }
    for (i, request) in collector.encoded_requests().into_iter().enumerate() {
        artefacts.push(Artefact {
            source: format!("OTLP export request {i}"),
            kind: Kind::Emitted,
            bytes: request,
        });
    }
    let database = data.join("ledger.db");
    let rows = runtime.block_on(table_values(&database));
    for table in ["jobs", "decision_log", "audit_events", "accounts"] {
        assert!(
            rows.iter()
                .any(|r| r.source.starts_with(&format!("table {table},"))),
            "table {table} has rows"
        );
    }
    artefacts.extend(rows);
    for path in files_under(&data) {
        artefacts.push(Artefact {
            source: format!("file {}", path.strip_prefix(&data).unwrap().display()),
            kind: Kind::Stored,
            bytes: std::fs::read(&path).unwrap(),
        });
    }

    let secrets: Vec<u64> = SECRETS.iter().map(|s| s.minor).collect();
    let scanner = Scanner::new(&secrets);
    let planted = Scanner::new(&[PLANTED]);
    let mut leaks = Vec::new();
    let mut planted_in = BTreeSet::new();
    let mut scanned = 0usize;
    for artefact in &artefacts {
        scanned += artefact.bytes.len();
        leaks.extend(scanner.scan(artefact));
        if !planted.scan(artefact).is_empty() {
            let kind = artefact
                .source
                .split([',', ' '])
                .take(2)
                .collect::<Vec<_>>();
            planted_in.insert(kind.join(" "));
        }
    }
    println!(
        "scanned {} artefacts, {scanned} bytes, for {} values in {} forms each; the planted value found in: {planted_in:?}",
        artefacts.len(),
        secrets.len(),
        forms(PLANTED).len()
    );
    for hit in leaks.iter().take(20) {
        let what = SECRETS.iter().find(|s| s.minor == hit.value).unwrap().what;
        println!(
            "LEAK: {what} as {} in {}: …{}…",
            hit.form, hit.source, hit.excerpt
        );
    }
    assert!(leaks.is_empty(), "{} plaintext values found", leaks.len());
    // The search reaches what it claims to: the planted name is found where names go.
    for place in ["table accounts", "GET http", "dev's log", "OTLP export"] {
        assert!(
            planted_in.iter().any(|p| p.starts_with(place)),
            "the planted value was found in {place}: {planted_in:?}"
        );
    }
}
