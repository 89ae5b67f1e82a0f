//! Validation of names and keys that arrive from clients.

use crate::error::LedgerError;

/// A tenant-qualified account name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// Tenant name.
    pub tenant: String,
    /// Account name within the tenant.
    pub account: String,
}

impl AccountRef {
    /// Validates both names.
    pub fn new(tenant: &str, account: &str) -> Result<Self, LedgerError> {
        validate_name("tenant", tenant)?;
        validate_name("account", account)?;
        Ok(Self {
            tenant: tenant.into(),
            account: account.into(),
        })
    }
}

impl std::fmt::Display for AccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.account)
    }
}

/// Checks a tenant or account name: 1 to 63 lowercase letters, digits, '-' or '_',
/// starting with a letter or digit.
pub fn validate_name(what: &str, name: &str) -> Result<(), LedgerError> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (1..=63).contains(&name.len()) && starts_well && name.chars().all(valid_char) {
        Ok(())
    } else {
        // The name is quoted as a bounded, escaped excerpt: answers never echo input whole.
        Err(LedgerError::InvalidArgument(format!(
            "invalid {what} name {}: use 1 to 63 lowercase letters, digits, '-' or '_'",
            blindledger_gate::excerpt(name)
        )))
    }
}

/// Checks an idempotency key: 1 to 128 printable ASCII characters.
pub fn validate_idempotency_key(key: &str) -> Result<(), LedgerError> {
    if (1..=128).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(LedgerError::InvalidArgument(
            "idempotency_key must be 1 to 128 printable ASCII characters".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("tenant", "acme").is_ok());
        assert!(validate_name("tenant", "acme-2_b").is_ok());
        for bad in ["", "Acme", "-x", "a/b", "a b", &"x".repeat(64)] {
            assert!(validate_name("tenant", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_refused_name_is_quoted_bounded() {
        let Err(LedgerError::InvalidArgument(message)) =
            validate_name("account", &"x".repeat(100_000))
        else {
            panic!("accepted")
        };
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("(100000 bytes)"), "{message}");
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert!(validate_idempotency_key("k-1").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key("a b").is_err());
        assert!(validate_idempotency_key(&"k".repeat(129)).is_err());
    }
}
