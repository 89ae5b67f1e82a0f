//! The tfhe parameters every BlindLedger tenant key is made with.

use serde::{Deserialize, Serialize};
use tfhe::shortint::parameters::{
    COMP_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    PARAM_KEYSWITCH_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
};
use tfhe::{Config, ConfigBuilder};

/// Compute parameters of every tenant key. Named explicitly: tfhe's default changes with
/// its `gpu` feature, and keys must not depend on how a binary was built.
pub const COMPUTE_PARAMS: tfhe::shortint::parameters::ClassicPBSParameters =
    PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128;

/// Returns the configuration of every tenant key: [`COMPUTE_PARAMS`], dedicated compact public-key
/// parameters so that clients encrypt with a 32 KiB public key, and compression so that
/// stored values take about 2 KB instead of 0.5 MB.
///
/// The dedicated OPRF key is left out: the ledger never draws encrypted random numbers,
/// and it would add about 57 MiB to every server key.
pub fn tfhe_config() -> Config {
    ConfigBuilder::with_custom_parameters(COMPUTE_PARAMS)
        .use_dedicated_compact_public_key_parameters((
            PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
            PARAM_KEYSWITCH_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
        ))
        .enable_compression(COMP_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128)
        .use_dedicated_oprf_key(false)
        .build()
}

/// Width of a tenant's amounts and balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerWidth {
    /// `FheUint32`: faster, for amounts below 2^32 minor units.
    U32,
    /// `FheUint64`: the default for money.
    U64,
}

impl LedgerWidth {
    /// Number of bits of a value.
    pub fn bits(self) -> u32 {
        match self {
            Self::U32 => 32,
            Self::U64 => 64,
        }
    }

    /// Returns the width with this many bits, if the ledger supports it.
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            32 => Some(Self::U32),
            64 => Some(Self::U64),
            _ => None,
        }
    }

    /// Largest amount a value of this width holds.
    pub fn max_value(self) -> u64 {
        match self {
            Self::U32 => u64::from(u32::MAX),
            Self::U64 => u64::MAX,
        }
    }

    /// The tfhe type an amount of this width must have.
    pub fn fhe_type(self) -> tfhe::FheTypes {
        match self {
            Self::U32 => tfhe::FheTypes::Uint32,
            Self::U64 => tfhe::FheTypes::Uint64,
        }
    }
}

impl std::fmt::Display for LedgerWidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "u{}", self.bits())
    }
}
