//! The ledger's homomorphic operations.
//!
//! Every function here runs on threads where the tenant's server key is set (see
//! [`crate::executor`]). Nothing here ever learns a plaintext value.
//!
//! The transfer is the cheapest correct sequence measured for BlindLedger (see
//! `benches/README.md`): one comparison, `if_then_zero` on the amount, then the debit and
//! the credit in parallel — 207 programmable bootstraps on 64 bits, against 239 for
//! ERC-7984's whitepaper sequence (comparison, select, add, sub). Limits add one scalar
//! comparison (max amount) or an overflow-checked addition and a scalar comparison
//! (window), and a one-block AND each.

use tfhe::prelude::*;
use tfhe::{
    CompactCiphertextList, CompactPublicKey, CompressedCiphertextList,
    CompressedCiphertextListBuilder, FheBool, FheUint32, FheUint64,
};

use crate::params::LedgerWidth;
use crate::wire::{decode_stored, encode_stored, WireError};

/// Errors of a homomorphic operation.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A stored or submitted value does not have the ledger's width.
    #[error("value width does not match the ledger ({0})")]
    WidthMismatch(LedgerWidth),
    /// tfhe refused an operation (missing key material, malformed list...).
    #[error("tfhe: {0}")]
    Tfhe(String),
    /// Stored bytes no longer decode.
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl From<tfhe::Error> for OpError {
    fn from(err: tfhe::Error) -> Self {
        Self::Tfhe(err.to_string())
    }
}

/// Plaintext limits a transfer must respect; checked on the encrypted amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferLimits {
    /// Largest amount one transfer may move.
    pub max_amount: Option<u64>,
    /// Largest total moved out per window; needs the window's encrypted outflow so far.
    pub window_limit: Option<u64>,
}

/// An encrypted amount or balance of either ledger width.
#[derive(Clone)]
pub enum Value {
    /// 32-bit ledger value.
    U32(FheUint32),
    /// 64-bit ledger value.
    U64(FheUint64),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value({})", self.width())
    }
}

/// What a transfer or a withdrawal computed.
pub struct Movement {
    /// New balance of the debited account.
    pub from: Value,
    /// New balance of the credited account (a withdrawal has none).
    pub to: Option<Value>,
    /// The amount actually moved: the amount when `ok`, zero otherwise.
    pub moved: Value,
    /// Whether every check passed.
    pub ok: FheBool,
    /// New outflow of the debited account in its window, when a window limit applies.
    pub window_spent: Option<Value>,
}

impl std::fmt::Debug for Movement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Movement")
            .field("width", &self.from.width())
            .finish_non_exhaustive()
    }
}

/// Encrypted results of an aggregate.
#[derive(Debug)]
pub struct Aggregate {
    /// Sum of the amounts moved out.
    pub sum_out: Value,
    /// Sum of the amounts moved in.
    pub sum_in: Value,
    /// Number of outgoing movements above the threshold.
    pub count_above: Value,
}

/// Generates the operations of one width; tfhe's scalar operations are typed by the
/// clear integer type, so each width gets its own copy.
macro_rules! width_ops {
    ($module:ident, $ct:ty, $clear:ty) => {
        mod $module {
            use super::*;

            pub(super) fn clamp(limit: Option<u64>) -> Option<$clear> {
                limit.and_then(|l| <$clear>::try_from(l).ok())
            }

            pub(super) fn movement(
                from: &$ct,
                to: Option<&$ct>,
                amount: &$ct,
                limits: TransferLimits,
                spent: Option<&$ct>,
            ) -> ($ct, Option<$ct>, $ct, FheBool, Option<$ct>) {
                let max = clamp(limits.max_amount);
                let window = clamp(limits.window_limit).zip(spent);
                let (covered, within) = rayon::join(
                    || from.ge(amount),
                    || {
                        let under_max = max.map(|max| amount.le(max));
                        // `spent + amount <= limit`, with the sum's overflow refused. Not
                        // `amount <= limit - spent`: the limit is the current risk tier's,
                        // and a tier escalation may lower it below what the account has
                        // already moved out, where the subtraction would wrap and let
                        // every amount through.
                        let under_window = window.map(|(limit, spent)| {
                            let (total, overflowed) = spent.overflowing_add(amount);
                            total.le(limit) & !overflowed
                        });
                        match (under_max, under_window) {
                            (Some(a), Some(b)) => Some(a & b),
                            (a, b) => a.or(b),
                        }
                    },
                );
                let ok = match within {
                    Some(within) => covered & within,
                    None => covered,
                };
                let moved = ok.if_then_zero(amount);
                let ((new_from, new_to), new_spent) = rayon::join(
                    || rayon::join(|| from - &moved, || to.map(|to| to + &moved)),
                    || window.map(|(_, spent)| spent + &moved),
                );
                (new_from, new_to, moved, ok, new_spent)
            }

            pub(super) fn count_above(values: &[&$ct], threshold: u64) -> $ct {
                // A threshold past the width's maximum counts nothing, as does the maximum itself.
                let threshold = threshold.min(<$clear>::MAX as u64) as $clear;
                let flags: Vec<$ct> = values
                    .iter()
                    .map(|v| <$ct>::cast_from(v.gt(threshold)))
                    .collect();
                sum(&flags.iter().collect::<Vec<_>>())
            }

            /// Multi-operand sum: one carry propagation for the whole list.
            pub(super) fn sum(values: &[&$ct]) -> $ct {
                match values {
                    [] => <$ct>::encrypt_trivial(0 as $clear),
                    [one] => (*one).clone(),
                    many => many.iter().copied().sum(),
                }
            }
        }
    };
}

width_ops!(u32_ops, FheUint32, u32);
width_ops!(u64_ops, FheUint64, u64);

impl Value {
    /// Width of this value.
    pub fn width(&self) -> LedgerWidth {
        match self {
            Self::U32(_) => LedgerWidth::U32,
            Self::U64(_) => LedgerWidth::U64,
        }
    }

    /// A trivial (noiseless, public) encryption of zero: the balance of a new account.
    pub fn zero(width: LedgerWidth) -> Self {
        match width {
            LedgerWidth::U32 => Self::U32(FheUint32::encrypt_trivial(0u32)),
            LedgerWidth::U64 => Self::U64(FheUint64::encrypt_trivial(0u64)),
        }
    }

    /// Expands a submitted amount (already checked by [`crate::wire::decode_amount`]).
    pub fn expand(list: &CompactCiphertextList, width: LedgerWidth) -> Result<Self, OpError> {
        let expander = list.expand()?;
        let value = match width {
            LedgerWidth::U32 => expander.get::<FheUint32>(0)?.map(Self::U32),
            LedgerWidth::U64 => expander.get::<FheUint64>(0)?.map(Self::U64),
        };
        value.ok_or(OpError::WidthMismatch(width))
    }

    /// Decompresses a stored value.
    pub fn decompress(bytes: &[u8], width: LedgerWidth) -> Result<Self, OpError> {
        let list: CompressedCiphertextList = decode_stored(bytes)?;
        let value = match width {
            LedgerWidth::U32 => list.get::<FheUint32>(0)?.map(Self::U32),
            LedgerWidth::U64 => list.get::<FheUint64>(0)?.map(Self::U64),
        };
        value.ok_or(OpError::WidthMismatch(width))
    }

    /// Compresses this value for storage (about 2 KB for 64 bits).
    pub fn compress(&self) -> Result<Vec<u8>, OpError> {
        let mut builder = CompressedCiphertextListBuilder::new();
        match self {
            Self::U32(v) => builder.push(v.clone()),
            Self::U64(v) => builder.push(v.clone()),
        };
        Ok(encode_stored(&builder.build()?))
    }

    /// Serializes this value uncompressed, for a key holder to decrypt.
    ///
    /// A trivial encryption (the zero of an account nothing was ever paid into) is first
    /// replaced by a fresh encryption of the same value under the tenant's `public_key`. A
    /// trivial ciphertext has no mask and no noise, so it is nothing a key holder should
    /// accept: clients check that a value carries the ledger's parameters, degree and noise
    /// level included (tfhe's conformance check, in Rust as in Zama's JavaScript package),
    /// and a trivial one fails it.
    pub fn to_wire(&self, public_key: &CompactPublicKey) -> Result<Vec<u8>, OpError> {
        let fresh;
        let value = match self.trivial_clear() {
            Some(clear) => {
                fresh = Self::encrypt_public(public_key, self.width(), clear)?;
                &fresh
            }
            None => self,
        };
        let mut out = Vec::new();
        let limit = 1 << 22;
        let written = match value {
            Self::U32(v) => tfhe::safe_serialization::safe_serialize(v, &mut out, limit),
            Self::U64(v) => tfhe::safe_serialization::safe_serialize(v, &mut out, limit),
        };
        written.expect("one integer ciphertext fits 4 MiB");
        Ok(out)
    }

    /// The plaintext of a trivial encryption (public by construction); `None` for a real one.
    fn trivial_clear(&self) -> Option<u64> {
        match self {
            Self::U32(v) => v.try_decrypt_trivial::<u32>().ok().map(u64::from),
            Self::U64(v) => v.try_decrypt_trivial::<u64>().ok(),
        }
    }

    /// Encrypts a public value under `public_key` and expands it as a submitted amount is:
    /// a ciphertext indistinguishable from any other of the tenant's.
    fn encrypt_public(
        public_key: &CompactPublicKey,
        width: LedgerWidth,
        clear: u64,
    ) -> Result<Self, OpError> {
        let list = crate::wire::encrypt_compact(public_key, width, clear)
            .ok_or(OpError::WidthMismatch(width))?;
        Self::expand(&list, width)
    }
}

/// Compresses an encrypted flag for storage.
pub fn compress_flag(flag: &FheBool) -> Result<Vec<u8>, OpError> {
    let list = CompressedCiphertextListBuilder::new()
        .push(flag.clone())
        .build()?;
    Ok(encode_stored(&list))
}

/// Decompresses a stored flag and serializes it for a key holder to decrypt.
pub fn flag_to_wire(bytes: &[u8]) -> Result<Vec<u8>, OpError> {
    let list = decode_stored(bytes)?;
    let flag: FheBool = list
        .get(0)?
        .ok_or(OpError::WidthMismatch(LedgerWidth::U64))?;
    let mut out = Vec::new();
    tfhe::safe_serialization::safe_serialize(&flag, &mut out, 1 << 20)
        .expect("one boolean ciphertext fits 1 MiB");
    Ok(out)
}

/// `balance += amount`.
pub fn deposit(balance: &Value, amount: &Value) -> Result<Value, OpError> {
    match (balance, amount) {
        (Value::U32(b), Value::U32(a)) => Ok(Value::U32(b + a)),
        (Value::U64(b), Value::U64(a)) => Ok(Value::U64(b + a)),
        _ => Err(OpError::WidthMismatch(balance.width())),
    }
}

/// Moves `amount` from `from` to `to` (or out of the ledger when `to` is `None`) when the
/// balance covers it and the limits allow it; moves zero otherwise. Nobody without the
/// key can tell which happened.
pub fn movement(
    from: &Value,
    to: Option<&Value>,
    amount: &Value,
    limits: TransferLimits,
    window_spent: Option<&Value>,
) -> Result<Movement, OpError> {
    let mismatch = || OpError::WidthMismatch(from.width());
    match (from, amount) {
        (Value::U32(f), Value::U32(a)) => {
            let to = to.map(|t| as_u32(t).ok_or_else(mismatch)).transpose()?;
            let spent = window_spent
                .map(|s| as_u32(s).ok_or_else(mismatch))
                .transpose()?;
            let (f, t, m, ok, s) = u32_ops::movement(f, to, a, limits, spent);
            Ok(Movement {
                from: Value::U32(f),
                to: t.map(Value::U32),
                moved: Value::U32(m),
                ok,
                window_spent: s.map(Value::U32),
            })
        }
        (Value::U64(f), Value::U64(a)) => {
            let to = to.map(|t| as_u64(t).ok_or_else(mismatch)).transpose()?;
            let spent = window_spent
                .map(|s| as_u64(s).ok_or_else(mismatch))
                .transpose()?;
            let (f, t, m, ok, s) = u64_ops::movement(f, to, a, limits, spent);
            Ok(Movement {
                from: Value::U64(f),
                to: t.map(Value::U64),
                moved: Value::U64(m),
                ok,
                window_spent: s.map(Value::U64),
            })
        }
        _ => Err(mismatch()),
    }
}

/// Sums the amounts moved out and in, and counts outgoing amounts above `threshold`.
pub fn aggregate(
    width: LedgerWidth,
    outgoing: &[Value],
    incoming: &[Value],
    threshold: u64,
) -> Result<Aggregate, OpError> {
    let mismatch = || OpError::WidthMismatch(width);
    match width {
        LedgerWidth::U32 => {
            let out: Vec<_> = outgoing
                .iter()
                .map(as_u32)
                .collect::<Option<_>>()
                .ok_or_else(mismatch)?;
            let inc: Vec<_> = incoming
                .iter()
                .map(as_u32)
                .collect::<Option<_>>()
                .ok_or_else(mismatch)?;
            let ((sum_out, sum_in), count) = rayon::join(
                || rayon::join(|| u32_ops::sum(&out), || u32_ops::sum(&inc)),
                || u32_ops::count_above(&out, threshold),
            );
            Ok(Aggregate {
                sum_out: Value::U32(sum_out),
                sum_in: Value::U32(sum_in),
                count_above: Value::U32(count),
            })
        }
        LedgerWidth::U64 => {
            let out: Vec<_> = outgoing
                .iter()
                .map(as_u64)
                .collect::<Option<_>>()
                .ok_or_else(mismatch)?;
            let inc: Vec<_> = incoming
                .iter()
                .map(as_u64)
                .collect::<Option<_>>()
                .ok_or_else(mismatch)?;
            let ((sum_out, sum_in), count) = rayon::join(
                || rayon::join(|| u64_ops::sum(&out), || u64_ops::sum(&inc)),
                || u64_ops::count_above(&out, threshold),
            );
            Ok(Aggregate {
                sum_out: Value::U64(sum_out),
                sum_in: Value::U64(sum_in),
                count_above: Value::U64(count),
            })
        }
    }
}

fn as_u32(value: &Value) -> Option<&FheUint32> {
    match value {
        Value::U32(v) => Some(v),
        Value::U64(_) => None,
    }
}

fn as_u64(value: &Value) -> Option<&FheUint64> {
    match value {
        Value::U64(v) => Some(v),
        Value::U32(_) => None,
    }
}
