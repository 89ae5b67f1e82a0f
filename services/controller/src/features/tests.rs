use super::*;

const MIN: i64 = 60_000;
/// 2026-01-15T00:00:00Z: a midnight, so the hour of a time is easy to read.
const MIDNIGHT: i64 = 1_768_435_200_000;

fn window() -> FeatureWindow {
    // Scored: 23:00-01:00; baseline: the 24 h before; night: 00:00-06:00.
    FeatureWindow {
        baseline_start: MIDNIGHT - 25 * 60 * MIN,
        start: MIDNIGHT - 60 * MIN,
        end: MIDNIGHT + 60 * MIN,
        night_start_hour: 0,
        night_end_hour: 6,
    }
}

fn decision(
    at: i64,
    principal: &'static str,
    account: &'static str,
    allowed: bool,
) -> DecisionFacts<'static> {
    DecisionFacts {
        logged_at: at,
        principal,
        method: "/blindledger.ledger.v1.LedgerService/Transfer",
        allowed,
        tenant: Some("acme"),
        account: Some(account),
        own_tenant: true,
    }
}

fn transfer(at: i64, from: &'static str, to: &'static str) -> JobFacts<'static> {
    JobFacts {
        created_at: at,
        tenant: "acme",
        kind: "transfer",
        account_a: from,
        account_b: Some(to),
    }
}

fn feature(entity: &EntityFeatures, name: &str) -> f64 {
    let at = FEATURE_NAMES.iter().position(|n| *n == name).unwrap();
    entity.values[at]
}

#[test]
fn accounts_and_principals_get_counts_rates_and_ratios() {
    let mut x = FeatureExtractor::new(window());
    // Four calls: two before midnight (day), two after (night), one denied.
    for (at, allowed) in [(-30, true), (-10, true), (10, false), (20, true)] {
        x.add_decision(&decision(MIDNIGHT + at * MIN, "alice", "a1", allowed));
    }
    // Outside both windows: ignored.
    x.add_decision(&decision(MIDNIGHT + 90 * MIN, "alice", "a1", true));
    let set = x.finish();
    assert_eq!(set.decision_rows, 4);
    let account = &set.accounts[0];
    assert_eq!(account.key, "acme/a1");
    assert_eq!(feature(account, "calls"), 4.0);
    assert!((feature(account, "calls_per_minute") - 4.0 / 120.0).abs() < 1e-12);
    assert_eq!(feature(account, "denial_ratio"), 0.25);
    assert_eq!(feature(account, "night_fraction"), 0.5);
    // One call per minute at most; the mean is 4/120 per minute.
    assert!((feature(account, "burstiness") - 30.0).abs() < 1e-9);
    let principal = &set.principals[0];
    assert_eq!(principal.key, "alice");
    assert_eq!(feature(principal, "transfers_out"), 3.0);
    assert_eq!(feature(principal, "distinct_counterparties"), 1.0);
}

#[test]
fn counterparties_are_new_unless_seen_in_the_baseline() {
    let mut x = FeatureExtractor::new(window());
    x.add_job(&transfer(MIDNIGHT - 5 * 60 * MIN, "a1", "old"));
    for (i, to) in ["old", "n1", "n2", "n2"].into_iter().enumerate() {
        x.add_job(&transfer(MIDNIGHT + i as i64 * MIN, "a1", to));
    }
    // Deposits have no counterparty.
    x.add_job(&JobFacts {
        kind: "deposit",
        account_b: None,
        ..transfer(MIDNIGHT, "a1", "x")
    });
    let set = x.finish();
    assert_eq!(set.job_rows, 6);
    let account = &set.accounts[0];
    assert_eq!(feature(account, "transfers_out"), 4.0);
    assert_eq!(feature(account, "distinct_counterparties"), 3.0);
    assert_eq!(feature(account, "new_counterparties"), 2.0);
    // Jobs alone make an account active, but not a caller.
    assert_eq!(feature(account, "calls"), 0.0);
    assert!(set.principals.is_empty());
}

#[test]
fn bursts_raise_burstiness_and_baseline_only_entities_are_left_out() {
    let mut x = FeatureExtractor::new(window());
    for second in 0..30 {
        x.add_decision(&decision(MIDNIGHT + second * 1000, "mallory", "m1", true));
    }
    x.add_decision(&decision(MIDNIGHT - 3 * 60 * MIN, "bob", "b1", true));
    let set = x.finish();
    assert_eq!(set.accounts.len(), 1);
    let burst = &set.accounts[0];
    // 30 calls in one minute against a mean of 30/120 per minute.
    assert!((feature(burst, "burstiness") - 120.0).abs() < 1e-9);
    assert_eq!(feature(burst, "night_fraction"), 1.0);
}

#[test]
fn night_may_span_midnight() {
    let w = FeatureWindow {
        night_start_hour: 22,
        night_end_hour: 6,
        ..window()
    };
    assert!(w.is_night(MIDNIGHT - 30 * MIN));
    assert!(w.is_night(MIDNIGHT + 5 * 60 * MIN));
    assert!(!w.is_night(MIDNIGHT + 6 * 60 * MIN));
    assert!(!w.is_night(MIDNIGHT - 3 * 60 * MIN));
}

#[test]
fn calls_from_outside_the_tenant_do_not_describe_the_account() {
    let mut x = FeatureExtractor::new(window());
    x.add_decision(&decision(
        MIDNIGHT + 10 * MIN,
        "payroll-app",
        "payroll",
        true,
    ));
    // Another tenant's teller hammers acme/payroll with denied calls, at night.
    for minute in 0..50 {
        let mut call = decision(MIDNIGHT + (20 + minute / 10) * MIN, "eve", "payroll", false);
        call.own_tenant = false;
        x.add_decision(&call);
    }
    let set = x.finish();
    let payroll = set
        .accounts
        .iter()
        .find(|a| a.key == "acme/payroll")
        .unwrap();
    assert_eq!(feature(payroll, "calls"), 1.0);
    assert_eq!(feature(payroll, "denial_ratio"), 0.0);
    assert_eq!(set.outside_attempts.get("acme/payroll"), Some(&50));
    // The caller's own features carry the attempts.
    let eve = set.principals.iter().find(|p| p.key == "eve").unwrap();
    assert_eq!(feature(eve, "denial_ratio"), 1.0);
}
