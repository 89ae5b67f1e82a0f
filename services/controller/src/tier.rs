//! Risk tiers: what the policy enforces per account, how scores map to them (with
//! hysteresis), and the limits each tier carries.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A risk tier, as `data.risk.tiers` holds it and the shipped policy reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    /// Ordinary behaviour: no obligations.
    Low,
    /// Unusual: the `medium` limits apply to transfers and withdrawals.
    Medium,
    /// Very unusual: the tighter `high` limits apply.
    High,
    /// Refused by the policy altogether.
    Blocked,
}

impl RiskTier {
    /// Every tier, from the lowest.
    pub const ALL: [RiskTier; 4] = [
        RiskTier::Low,
        RiskTier::Medium,
        RiskTier::High,
        RiskTier::Blocked,
    ];

    /// The tier's name in bundle data and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::Low => "low",
            RiskTier::Medium => "medium",
            RiskTier::High => "high",
            RiskTier::Blocked => "blocked",
        }
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RiskTier {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RiskTier::ALL
            .into_iter()
            .find(|tier| tier.as_str() == text)
            .ok_or_else(|| format!("unknown risk tier '{text}'"))
    }
}

/// Score thresholds of the tiers above `low`, and the hysteresis margin.
///
/// An entity moves up as soon as its score reaches a higher tier's threshold, and down only
/// once its score falls below its current tier's threshold minus `margin`, so a score
/// hovering around a threshold does not make the tier (and the bundle) flap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierThresholds {
    /// Lowest score of `medium`.
    pub medium: f64,
    /// Lowest score of `high`.
    pub high: f64,
    /// Lowest score of `blocked` (above 1: never blocked automatically).
    pub blocked: f64,
    /// How far below its threshold a score must fall before the tier goes down.
    pub margin: f64,
}

impl Default for TierThresholds {
    fn default() -> Self {
        // Isolation-forest scores: about 0.5 and below is ordinary; clear outliers of a
        // few hundred entities reach 0.65-0.8.
        Self {
            medium: 0.6,
            high: 0.68,
            blocked: 0.9,
            margin: 0.05,
        }
    }
}

impl TierThresholds {
    /// Checks that thresholds increase with the tier and the margin is non-negative.
    pub fn validate(&self) -> Result<(), String> {
        let ordered = 0.0 < self.medium && self.medium <= self.high && self.high <= self.blocked;
        if !(ordered && self.margin >= 0.0 && self.margin < self.medium) {
            return Err(format!(
                "thresholds must satisfy 0 < medium <= high <= blocked and 0 <= margin < medium, \
                 got {self:?}"
            ));
        }
        Ok(())
    }

    fn threshold(&self, tier: RiskTier) -> f64 {
        match tier {
            RiskTier::Low => f64::NEG_INFINITY,
            RiskTier::Medium => self.medium,
            RiskTier::High => self.high,
            RiskTier::Blocked => self.blocked,
        }
    }

    /// The highest tier whose threshold, lowered by `slack`, `score` reaches.
    fn reached(&self, score: f64, slack: f64) -> RiskTier {
        RiskTier::ALL
            .into_iter()
            .rev()
            .find(|&tier| score >= self.threshold(tier) - slack)
            .unwrap_or(RiskTier::Low)
    }

    /// The tier of an entity scoring `score` that was in `current`.
    pub fn next_tier(&self, current: RiskTier, score: f64) -> RiskTier {
        let up = self.reached(score, 0.0);
        if up > current {
            return up;
        }
        // Within the margin of every tier up to the current one, the entity stays where it
        // is; below it, it lands on the highest tier it is still within the margin of.
        self.reached(score, self.margin).min(current)
    }
}

/// The obligations of a tier: the shipped policy returns them for transfers and
/// withdrawals on accounts of that tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    /// Largest single amount, in minor units.
    pub max_amount: u64,
    /// Largest total within `window_seconds`, in minor units.
    pub window_limit: u64,
    /// Length of the window.
    pub window_seconds: u64,
}

impl TierLimits {
    /// The default limits of `medium` and `high`.
    pub fn defaults() -> BTreeMap<RiskTier, TierLimits> {
        BTreeMap::from([
            (
                RiskTier::Medium,
                TierLimits {
                    max_amount: 100_000,
                    window_limit: 500_000,
                    window_seconds: 86_400,
                },
            ),
            (
                RiskTier::High,
                TierLimits {
                    max_amount: 10_000,
                    window_limit: 50_000,
                    window_seconds: 86_400,
                },
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> TierThresholds {
        TierThresholds {
            medium: 0.6,
            high: 0.7,
            blocked: 0.8,
            margin: 0.05,
        }
    }

    #[test]
    fn tiers_go_up_at_the_threshold() {
        let t = thresholds();
        assert_eq!(t.next_tier(RiskTier::Low, 0.59), RiskTier::Low);
        assert_eq!(t.next_tier(RiskTier::Low, 0.6), RiskTier::Medium);
        assert_eq!(t.next_tier(RiskTier::Low, 0.75), RiskTier::High);
        assert_eq!(t.next_tier(RiskTier::Medium, 0.85), RiskTier::Blocked);
    }

    #[test]
    fn tiers_go_down_only_past_the_margin() {
        let t = thresholds();
        assert_eq!(t.next_tier(RiskTier::High, 0.66), RiskTier::High);
        assert_eq!(t.next_tier(RiskTier::High, 0.649), RiskTier::Medium);
        assert_eq!(t.next_tier(RiskTier::High, 0.56), RiskTier::Medium);
        assert_eq!(t.next_tier(RiskTier::High, 0.54), RiskTier::Low);
        assert_eq!(t.next_tier(RiskTier::Blocked, 0.1), RiskTier::Low);
        assert_eq!(t.next_tier(RiskTier::Medium, 0.58), RiskTier::Medium);
    }

    #[test]
    fn thresholds_must_be_ordered() {
        assert!(thresholds().validate().is_ok());
        let bad = TierThresholds {
            high: 0.5,
            ..thresholds()
        };
        assert!(bad.validate().is_err());
        assert_eq!("high".parse::<RiskTier>(), Ok(RiskTier::High));
        assert!("critical".parse::<RiskTier>().is_err());
    }
}
