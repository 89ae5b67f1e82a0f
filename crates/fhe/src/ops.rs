//! The ledger's homomorphic operations.
//!
//! Every function here runs on threads where the tenant's server key is set (see
//! [`crate::executor`]). Nothing here ever learns a plaintext value.
//!
//! The transfer is the cheapest correct sequence measured for BlindLedger (see
//! `benches/README.md`): one comparison, `if_then_zero` on the amount, then the debit and
//! the credit in parallel — 207 programmable bootstraps on 64 bits, against 239 for
//! ERC-7984's whitepaper sequence (comparison, select, add, sub). A max amount adds one
//! scalar comparison and a one-block AND. A window limit keeps the window's remaining
//! allowance rather than its outflow: one comparison against the amount and one
//! subtraction of the amount moved, on 32 bits whenever the limit fits them.
//!
//! With a GPU key installed (the `gpu` feature), every operation here runs on the GPU,
//! expansion of submitted amounts, compression and decompression included. Two that tfhe
//! 1.8.2's CUDA backend lacks (it panics on them) take another path there, with the same
//! results: `if_then_zero` (see `zero_unless`) and the subtraction of a clear value with
//! its overflow in [`rebase_allowance`]. Stored values have one format on both backends.

use rayon::prelude::*;
use tfhe::prelude::*;
use tfhe::{
    CompactCiphertextList, CompactPublicKey, CompressedCiphertextList,
    CompressedCiphertextListBuilder, FheBool, FheUint, FheUint32, FheUint64, FheUintId,
};

use crate::backend::gpu_key_installed;
use crate::params::{LedgerWidth, COMPUTE_PARAMS};
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
    /// The operation was called with arguments that do not fit together.
    #[error("invalid operation: {0}")]
    Invalid(&'static str),
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
    /// Largest total moved out per window; needs the window's encrypted remaining
    /// allowance (see [`fresh_allowance`]).
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
    /// New remaining allowance of the debited account in its window, when a window limit
    /// applies: the allowance less the amount moved.
    pub window_remaining: Option<Value>,
}

impl std::fmt::Debug for Movement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Movement")
            .field("width", &self.from.width())
            .finish_non_exhaustive()
    }
}

/// Generates the operations of one width; tfhe's scalar operations are typed by the
/// clear integer type, so each width gets its own copy.
macro_rules! width_ops {
    ($module:ident, $ct:ty, $clear:ty, $variant:ident) => {
        mod $module {
            use super::*;

            pub(super) fn clamp(limit: Option<u64>) -> Option<$clear> {
                limit.and_then(|l| <$clear>::try_from(l).ok())
            }

            /// `ok = from >= amount && amount <= max && window.remaining >= amount`, then
            /// `moved = ok ? amount : 0`, debit, credit and allowance update in parallel.
            ///
            /// The caller guarantees that an allowance narrower than the ledger comes with
            /// a `max` no larger than the allowance's limit, so an amount that passes both
            /// checks fits the narrower width and truncating it loses nothing.
            pub(super) fn movement(
                from: &$ct,
                to: Option<&$ct>,
                amount: &$ct,
                max: Option<u64>,
                remaining: Option<&Value>,
            ) -> Result<($ct, Option<$ct>, $ct, FheBool, Option<Value>), OpError> {
                let max = clamp(max);
                let window_amount =
                    remaining.map(|r| Value::$variant(amount.clone()).cast_to(r.width()));
                let (covered, within) = rayon::join(
                    || from.ge(amount),
                    || {
                        let (under_max, under_window) = rayon::join(
                            || max.map(|max| amount.le(max)),
                            || remaining.zip(window_amount.as_ref()).map(|(r, a)| r.ge(a)),
                        );
                        match (under_max, under_window.transpose()?) {
                            (Some(a), Some(b)) => Ok(Some(a & b)),
                            (a, b) => Ok::<_, OpError>(a.or(b)),
                        }
                    },
                );
                let ok = match within? {
                    Some(within) => covered & within,
                    None => covered,
                };
                let moved = zero_unless(&ok, amount);
                let ((new_from, new_to), new_remaining) = rayon::join(
                    || rayon::join(|| from - &moved, || to.map(|to| to + &moved)),
                    || remaining.map(|r| r.sub(&Value::$variant(moved.clone()).cast_to(r.width()))),
                );
                Ok((new_from, new_to, moved, ok, new_remaining.transpose()?))
            }

            /// One per value: 1 when it is above `threshold`, 0 otherwise.
            pub(super) fn flags_above(values: &[&$ct], threshold: u64) -> Vec<$ct> {
                // A threshold past the width's maximum counts nothing, as does the maximum itself.
                let threshold = threshold.min(<$clear>::MAX as u64) as $clear;
                values
                    .par_iter()
                    .map(|v| <$ct>::cast_from(v.gt(threshold)))
                    .collect()
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

width_ops!(u32_ops, FheUint32, u32, U32);
width_ops!(u64_ops, FheUint64, u64, U64);

/// `value` when `flag` holds, zero otherwise: one bootstrap per block of `value` on the CPU.
///
/// tfhe 1.8.2's CUDA backend has no `if_then_zero`; on a GPU this selects between `value`
/// and a trivial zero instead: the same value, for more bootstraps (a select costs three
/// per block on the CPU).
fn zero_unless<Id: FheUintId>(flag: &FheBool, value: &FheUint<Id>) -> FheUint<Id> {
    if gpu_key_installed() {
        flag.select(value, &FheUint::encrypt_trivial(0u64))
    } else {
        flag.if_then_zero(value)
    }
}

impl Value {
    /// Width of this value.
    pub fn width(&self) -> LedgerWidth {
        match self {
            Self::U32(_) => LedgerWidth::U32,
            Self::U64(_) => LedgerWidth::U64,
        }
    }

    /// This value in another width: truncated to the low 32 bits or extended with zeros.
    /// Neither costs a bootstrap.
    pub fn cast_to(&self, width: LedgerWidth) -> Self {
        match (self, width) {
            (Self::U32(v), LedgerWidth::U32) => Self::U32(v.clone()),
            (Self::U64(v), LedgerWidth::U64) => Self::U64(v.clone()),
            (Self::U32(v), LedgerWidth::U64) => Self::U64(FheUint64::cast_from(v.clone())),
            (Self::U64(v), LedgerWidth::U32) => Self::U32(FheUint32::cast_from(v.clone())),
        }
    }

    /// Whether a key holder would accept this value as it is: its blocks' degrees and noise
    /// levels are those of a value fresh from a bootstrap or a decompression (tfhe's
    /// conformance check, which clients run). Results of some operations (a multi-operand
    /// sum's last additions, for one) are correct but not conformant until they are
    /// compressed and decompressed again.
    pub fn is_conformant(&self) -> bool {
        use tfhe::conformance::ParameterSetConformant;
        use tfhe::{FheUint32ConformanceParams, FheUint64ConformanceParams};
        match self {
            Self::U32(v) => v.is_conformant(&FheUint32ConformanceParams::from(COMPUTE_PARAMS)),
            Self::U64(v) => v.is_conformant(&FheUint64ConformanceParams::from(COMPUTE_PARAMS)),
        }
    }

    /// `self >= other`, both of one width.
    fn ge(&self, other: &Self) -> Result<FheBool, OpError> {
        match (self, other) {
            (Self::U32(a), Self::U32(b)) => Ok(a.ge(b)),
            (Self::U64(a), Self::U64(b)) => Ok(a.ge(b)),
            _ => Err(OpError::WidthMismatch(self.width())),
        }
    }

    /// `self - other`, both of one width (wrapping: callers check first).
    fn sub(&self, other: &Self) -> Result<Self, OpError> {
        match (self, other) {
            (Self::U32(a), Self::U32(b)) => Ok(Self::U32(a - b)),
            (Self::U64(a), Self::U64(b)) => Ok(Self::U64(a - b)),
            _ => Err(OpError::WidthMismatch(self.width())),
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
    ///
    /// A value a key holder would not accept as it is (see [`Value::is_conformant`]: a
    /// count widened with zero blocks, for one) goes through storage's compression and
    /// decompression first, which gives it a conformant form.
    pub fn to_wire(&self, public_key: &CompactPublicKey) -> Result<Vec<u8>, OpError> {
        let fresh;
        let value = match self.trivial_clear() {
            Some(clear) => {
                fresh = Self::encrypt_public(public_key, self.width(), clear)?;
                &fresh
            }
            None if !self.is_conformant() => {
                fresh = Self::decompress(&self.compress()?, self.width())?;
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
///
/// A window limit needs the window's `remaining` allowance for that limit (from
/// [`fresh_allowance`] or [`rebase_allowance`]); the amount must not exceed it, and the
/// allowance drops by the amount moved. Nothing wraps: the comparison comes before the
/// subtraction, and an allowance never holds more than its limit.
pub fn movement(
    from: &Value,
    to: Option<&Value>,
    amount: &Value,
    limits: TransferLimits,
    remaining: Option<&Value>,
) -> Result<Movement, OpError> {
    let mismatch = || OpError::WidthMismatch(from.width());
    let mut max = limits.max_amount;
    if let Some(remaining) = remaining {
        let limit = limits
            .window_limit
            .ok_or(OpError::Invalid("an allowance needs its window limit"))?;
        if remaining.width() != allowance_width(from.width(), limit) {
            return Err(OpError::WidthMismatch(remaining.width()));
        }
        if remaining.width() != from.width() {
            // The allowance counts in fewer bits than the ledger: an amount above the
            // limit could pass its comparison on the truncated bits. Such an amount cannot
            // pass anyway, so checking `amount <= limit` with the scalar comparison costs
            // nothing in meaning and makes the truncation exact.
            max = Some(max.map_or(limit, |max| max.min(limit)));
        }
    }
    match (from, amount) {
        (Value::U32(f), Value::U32(a)) => {
            let to = to.map(|t| as_u32(t).ok_or_else(mismatch)).transpose()?;
            let result = u32_ops::movement(f, to, a, max, remaining)?;
            Ok(moved_with(result, Value::U32))
        }
        (Value::U64(f), Value::U64(a)) => {
            let to = to.map(|t| as_u64(t).ok_or_else(mismatch)).transpose()?;
            let result = u64_ops::movement(f, to, a, max, remaining)?;
            Ok(moved_with(result, Value::U64))
        }
        _ => Err(mismatch()),
    }
}

/// Wraps one width's movement parts into a [`Movement`].
fn moved_with<T>(
    (from, to, moved, ok, remaining): (T, Option<T>, T, FheBool, Option<Value>),
    wrap: fn(T) -> Value,
) -> Movement {
    Movement {
        from: wrap(from),
        to: to.map(wrap),
        moved: wrap(moved),
        ok,
        window_remaining: remaining,
    }
}

/// Width of the encrypted allowance of a window `limit` on a ledger of width `ledger`:
/// 32 bits whenever the limit fits them, which halves the window's bootstraps on a 64-bit
/// ledger (its comparison and its update run on 16 blocks instead of 32).
pub fn allowance_width(ledger: LedgerWidth, limit: u64) -> LedgerWidth {
    if limit <= u64::from(u32::MAX) {
        LedgerWidth::U32
    } else {
        ledger
    }
}

/// The allowance of a window that starts now: its whole `limit`. A trivial encryption,
/// which hides nothing and needs to hide nothing: limits are plaintext.
pub fn fresh_allowance(ledger: LedgerWidth, limit: u64) -> Value {
    let limit = limit.min(ledger.max_value());
    match allowance_width(ledger, limit) {
        LedgerWidth::U32 => Value::U32(FheUint32::encrypt_trivial(limit as u32)),
        LedgerWidth::U64 => Value::U64(FheUint64::encrypt_trivial(limit)),
    }
}

/// Carries a window's allowance from the limit it was counted against (`from_limit`) to
/// the limit in force now (`to_limit`), as when a risk tier changes mid-window: what the
/// window already moved out stays moved out. A higher limit adds the difference; a lower
/// one removes it, down to zero and never below: a limit lowered past what the window
/// already moved leaves nothing to move, where a wrapping subtraction would let every
/// amount through.
pub fn rebase_allowance(
    remaining: &Value,
    ledger: LedgerWidth,
    from_limit: u64,
    to_limit: u64,
) -> Value {
    let cap = ledger.max_value();
    let (from_limit, to_limit) = (from_limit.min(cap), to_limit.min(cap));
    let target = allowance_width(ledger, to_limit);
    if from_limit == to_limit {
        return remaining.cast_to(target);
    }
    let Value::U64(wide) = remaining.cast_to(LedgerWidth::U64) else {
        unreachable!("cast to 64 bits")
    };
    let rebased = if to_limit > from_limit {
        // At most `from_limit + (to_limit - from_limit)`: no overflow.
        &wide + (to_limit - from_limit)
    } else {
        let lowered_by = from_limit - to_limit;
        let (lowered, below_zero) = if gpu_key_installed() {
            // tfhe 1.8.2's CUDA backend has no overflowing subtraction of a clear value:
            // subtract it as a trivial ciphertext.
            wide.overflowing_sub(&FheUint64::encrypt_trivial(lowered_by))
        } else {
            wide.overflowing_sub(lowered_by)
        };
        zero_unless(&!below_zero, &lowered)
    };
    Value::U64(rebased).cast_to(target)
}

/// The allowance left of `limit` after an outflow `spent` (of the ledger's width), zero
/// when the outflow already reached the limit. Reads windows stored by earlier versions,
/// which counted the outflow instead of the allowance.
pub fn allowance_from_outflow(
    spent: &Value,
    ledger: LedgerWidth,
    limit: u64,
) -> Result<Value, OpError> {
    if spent.width() != ledger {
        return Err(OpError::WidthMismatch(ledger));
    }
    let limit = limit.min(ledger.max_value());
    let Value::U64(spent) = spent.cast_to(LedgerWidth::U64) else {
        unreachable!("cast to 64 bits")
    };
    let (left, below_zero) = FheUint64::encrypt_trivial(limit).overflowing_sub(&spent);
    Ok(Value::U64(zero_unless(&!below_zero, &left)).cast_to(allowance_width(ledger, limit)))
}

/// Values of one width, as tfhe's types.
enum Typed<'a> {
    U32(Vec<&'a FheUint32>),
    U64(Vec<&'a FheUint64>),
}

/// Checks that every value has the width `width`.
fn typed<V: AsRef<Value>>(width: LedgerWidth, values: &[V]) -> Result<Typed<'_>, OpError> {
    let mismatch = || OpError::WidthMismatch(width);
    let values = values.iter().map(AsRef::as_ref);
    Ok(match width {
        LedgerWidth::U32 => Typed::U32(
            values
                .map(as_u32)
                .collect::<Option<_>>()
                .ok_or_else(mismatch)?,
        ),
        LedgerWidth::U64 => Typed::U64(
            values
                .map(as_u64)
                .collect::<Option<_>>()
                .ok_or_else(mismatch)?,
        ),
    })
}

/// The sum of `values` (zero for none), with one carry propagation for the whole list.
pub fn sum<V: AsRef<Value>>(width: LedgerWidth, values: &[V]) -> Result<Value, OpError> {
    Ok(match typed(width, values)? {
        Typed::U32(values) => Value::U32(u32_ops::sum(&values)),
        Typed::U64(values) => Value::U64(u64_ops::sum(&values)),
    })
}

/// One value per amount: an encrypted 1 when the amount is above `threshold`, 0
/// otherwise; their sum counts them.
pub fn flags_above<V: AsRef<Value>>(
    width: LedgerWidth,
    amounts: &[V],
    threshold: u64,
) -> Result<Vec<Value>, OpError> {
    Ok(match typed(width, amounts)? {
        Typed::U32(values) => u32_ops::flags_above(&values, threshold)
            .into_iter()
            .map(Value::U32)
            .collect(),
        Typed::U64(values) => u64_ops::flags_above(&values, threshold)
            .into_iter()
            .map(Value::U64)
            .collect(),
    })
}

/// `total - earlier`, wrapping: the difference of two running totals is the sum of what
/// came between them, modulo 2^width, exactly as that sum itself would be.
pub fn difference(total: &Value, earlier: &Value) -> Result<Value, OpError> {
    total.sub(earlier)
}

impl AsRef<Value> for Value {
    fn as_ref(&self) -> &Value {
        self
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
