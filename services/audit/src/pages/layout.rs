//! The page frame every dashboard page shares.

use maud::{html, Markup, DOCTYPE};

use blindledger_audit::rfc3339_ms;

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}
header a{color:#cfd8e3;text-decoration:none}header a.active{color:#fff;font-weight:600}
header .who{margin-left:auto;font-size:.85rem}
main{padding:1rem 1.2rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e6ea;padding:.35rem .5rem;text-align:left;font-size:.85rem}
th{background:#eef1f4}
.deny{color:#b3261e;font-weight:600}.allow{color:#1e7b34}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin-bottom:1rem}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:.8rem 1rem;min-width:12rem}
.card b{display:block;font-size:1.6rem}
form.filters{display:flex;gap:.5rem;flex-wrap:wrap;margin-bottom:.8rem;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:.75rem}
.bar{display:inline-block;width:1.2rem;background:#3b6fd8;margin-right:2px;vertical-align:bottom}
.step{background:#fff;border-left:4px solid #3b6fd8;padding:.5rem .8rem;margin:.5rem 0}
.step.missing{border-color:#aab2bd;color:#6b7480}
.new{animation:flash 2s}@keyframes flash{from{background:#fff3b0}to{background:#fff}}
.tier.medium{color:#9a6700;font-weight:600}.tier.high{color:#c4480c;font-weight:600}
.tier.blocked{color:#b3261e;font-weight:700}
svg.spark{display:block;background:#fafbfc}.dot{fill:#3b6fd8}.dot.medium{fill:#d4a017}
.dot.high{fill:#e0661d}.dot.blocked{fill:#b3261e}
ul.counts{margin:0;padding-left:1rem}.muted{color:#6b7480}
";

/// The navigation entries: path and label.
const NAV: [(&str, &str); 6] = [
    ("/", "Overview"),
    ("/decisions", "Decisions"),
    ("/transactions", "Transactions"),
    ("/attention", "Attention"),
    ("/risk", "Risk"),
    ("/bundles", "Bundles"),
];

/// Wraps `body` in the page frame, `active` being the current navigation path.
pub fn page(title: &str, active: &str, officer: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · BlindLedger audit" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "BlindLedger audit" }
                    @for (path, label) in NAV {
                        a href=(path) class=[(path == active).then_some("active")] { (label) }
                    }
                    a href="/export.csv" { "Export CSV" }
                    @if let Some(officer) = officer {
                        span.who {
                            "Signed in as " (officer) " · "
                            form method="post" action="/logout" style="display:inline" {
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A time for display: RFC 3339 UTC with milliseconds.
pub fn time(ms: i64) -> String {
    rfc3339_ms(ms)
}

/// An optional time for display.
pub fn maybe_time(ms: Option<i64>) -> String {
    ms.map(time).unwrap_or_else(|| "—".into())
}
