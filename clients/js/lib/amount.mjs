// Currency amounts as the Rust CLI takes them (crates/cli/src/amount.rs): decimal text
// with at most two decimals, converted exactly to integer minor units (cents). No floats.

const MAX_U64 = 0xffffffffffffffffn;

/** `12` -> 1200n, `12.5` -> 1250n, `12.50` -> 1250n. Throws on anything else. */
export function parseAmount(text) {
  const t = String(text).trim();
  if (t === '') throw new Error('the amount is empty');
  if (t.startsWith('-')) throw new Error('amounts cannot be negative');
  const m = /^(\d+)(?:\.(\d*))?$/.exec(t);
  // "1." (no decimals after the point) is refused, as by the Rust CLI.
  if (!m || m[2] === '') throw new Error(`'${t}' is not a decimal amount such as 25.50`);
  const decimals = m[2] ?? '';
  if (decimals.length > 2) throw new Error(`'${t}' has more than 2 decimals`);
  // "1.5" is 1.50: a single decimal counts tens of cents.
  const cents = BigInt(m[1]) * 100n + BigInt(decimals.padEnd(2, '0'));
  if (cents > MAX_U64) throw new Error(`'${t}' is too large`);
  return cents;
}

/** 7450n -> "74.50". */
export function formatAmount(minorUnits) {
  const v = BigInt(minorUnits);
  const cents = (v % 100n).toString().padStart(2, '0');
  return `${v / 100n}.${cents}`;
}
