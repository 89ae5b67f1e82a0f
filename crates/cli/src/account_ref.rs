//! Account references of the form `tenant/account`.

use std::fmt;
use std::str::FromStr;

/// Longest tenant or account name the ledger accepts.
const MAX_NAME_LEN: usize = 63;

/// An account named as `tenant/account`, e.g. `acme/alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// The tenant owning the account.
    pub tenant: String,
    /// The account's name within the tenant.
    pub account: String,
}

impl FromStr for AccountRef {
    type Err = String;

    /// Parses `tenant/account`, naming what is wrong with anything else.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((tenant, account)) = text.split_once('/') else {
            return Err(format!(
                "'{text}' is not an account reference: expected tenant/account, e.g. acme/alice"
            ));
        };
        if account.contains('/') {
            return Err(format!(
                "'{text}' has more than one '/': expected tenant/account"
            ));
        }
        validate_tenant(tenant)?;
        validate_account(account)?;
        Ok(Self {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
        })
    }
}

impl fmt::Display for AccountRef {
    /// Writes the reference back as `tenant/account`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.account)
    }
}

/// Checks a tenant name. Checked here as well as by the ledger because the name also
/// names a key directory on disk.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    validate_name("tenant", tenant)
}

/// Checks an account name.
fn validate_account(account: &str) -> Result<(), String> {
    validate_name("account", account)
}

/// Applies the ledger's naming rule: 1 to 63 lowercase letters, digits, `-` or `_`,
/// starting with a letter or digit.
fn validate_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!(
            "the {what} name is empty: expected tenant/account, e.g. acme/alice"
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let starts_well = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > MAX_NAME_LEN || !starts_well || !name.chars().all(allowed) {
        return Err(format!(
            "invalid {what} name '{name}': use 1 to {MAX_NAME_LEN} lowercase letters, digits, '-' or '_', starting with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tenant_and_account() {
        let parsed: AccountRef = "acme/alice".parse().expect("valid reference");
        assert_eq!(parsed.tenant, "acme");
        assert_eq!(parsed.account, "alice");
        assert_eq!(parsed.to_string(), "acme/alice");
        let parsed: AccountRef = "acme-eu_2/bob_smith-1".parse().expect("valid reference");
        assert_eq!(parsed.account, "bob_smith-1");
    }

    #[test]
    fn rejects_missing_or_extra_separators() {
        let err = "alice".parse::<AccountRef>().expect_err("no slash");
        assert!(err.contains("expected tenant/account"), "{err}");
        let err = "acme/alice/x"
            .parse::<AccountRef>()
            .expect_err("two slashes");
        assert!(err.contains("more than one '/'"), "{err}");
    }

    #[test]
    fn rejects_empty_parts() {
        let err = "/alice".parse::<AccountRef>().expect_err("empty tenant");
        assert!(err.contains("tenant name is empty"), "{err}");
        let err = "acme/".parse::<AccountRef>().expect_err("empty account");
        assert!(err.contains("account name is empty"), "{err}");
        assert!("/".parse::<AccountRef>().is_err());
        assert!("".parse::<AccountRef>().is_err());
    }

    #[test]
    fn rejects_bad_tenant_names() {
        for bad in [
            "Acme/alice",
            "ac me/alice",
            "../alice",
            "acme./alice",
            "é/alice",
        ] {
            let err = bad.parse::<AccountRef>().expect_err(bad);
            assert!(err.contains("invalid tenant name"), "{bad}: {err}");
        }
        let long = format!("{}/alice", "a".repeat(64));
        assert!(long.parse::<AccountRef>().is_err());
        let max = format!("{}/alice", "a".repeat(63));
        assert!(max.parse::<AccountRef>().is_ok());
    }

    #[test]
    fn rejects_bad_account_names() {
        for bad in [
            "acme/al ice",
            "acme/alice\n",
            "acme/Alice",
            "acme/_alice",
            "acme/a.b",
        ] {
            let err = bad.parse::<AccountRef>().expect_err(bad);
            assert!(err.contains("invalid account name"), "{bad}: {err}");
        }
    }

    #[test]
    fn validates_tenant_names_alone() {
        assert!(validate_tenant("acme").is_ok());
        assert!(validate_tenant("a-1_b").is_ok());
        assert!(validate_tenant("").is_err());
        assert!(validate_tenant("..").is_err());
        assert!(validate_tenant("acme/x").is_err());
    }
}
