// Encryption of BlindLedger input amounts with Zama's node-tfhe (WebAssembly build of
// tfhe-rs). Mirrors crates/fhe/src/wire.rs: an amount is a packed CompactCiphertextList
// holding exactly one unsigned integer of the ledger's width, encrypted with the tenant's
// CompactPublicKey and written with tfhe's safe serialization under the ledger's limits.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tfhe = require('node-tfhe');

/** Largest serialized input amount the ledger accepts (wire.rs MAX_AMOUNT_BYTES). */
export const MAX_AMOUNT_BYTES = 64n * 1024n;
/** Largest serialized compact public key the ledger accepts (wire.rs MAX_PUBLIC_KEY_BYTES). */
export const MAX_PUBLIC_KEY_BYTES = 1024n * 1024n;

/** Widths as the proto's LedgerWidth names them, and as `u32`/`u64`. */
const WIDTHS = {
  LEDGER_WIDTH_U32: 'u32',
  LEDGER_WIDTH_U64: 'u64',
  u32: 'u32',
  u64: 'u64',
  32: 'u32',
  64: 'u64',
};

export function normalizeWidth(width) {
  const w = WIDTHS[String(width)];
  if (!w) throw new Error(`unsupported ledger width ${width}`);
  return w;
}

/** The installed node-tfhe version (package.json of the package). */
export function nodeTfheVersion() {
  return require('node-tfhe/package.json').version;
}

/**
 * Hex SHA-256 of the serialized public key: the fingerprint `blindledger keys show`
 * prints and the Rust client pins (wire.rs public_key_fingerprint).
 */
export function publicKeyFingerprint(publicKeyBytes) {
  return createHash('sha256').update(publicKeyBytes).digest('hex');
}

/**
 * Checks that `publicKeyBytes` has the fingerprint `pin` (64 hex digits) and throws
 * otherwise: amounts are only ever encrypted to a key the caller pinned, never to whatever
 * key a ledger returns.
 */
export function checkPin(tenant, publicKeyBytes, pin) {
  const expected = String(pin).trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw new Error(`pin for ${tenant} is not 64 hex digits`);
  }
  const found = publicKeyFingerprint(publicKeyBytes);
  if (found !== expected) {
    throw new Error(
      `the ledger returned a public key for ${tenant} with fingerprint ${found}, ` +
        `expected ${expected}: refusing to use it`,
    );
  }
}

/**
 * Decodes a tenant's safe-serialized CompactPublicKey, checking that it was made with the
 * ledger's public-key parameters (PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128).
 */
export function decodePublicKey(publicKeyBytes) {
  const params = new tfhe.ShortintCompactPublicKeyEncryptionParameters(
    tfhe.ShortintCompactPublicKeyEncryptionParametersName
      .PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
  );
  try {
    return tfhe.TfheCompactPublicKey.safe_deserialize_conformant(
      toUint8Array(publicKeyBytes),
      MAX_PUBLIC_KEY_BYTES,
      params,
    );
  } finally {
    params.free();
  }
}

/**
 * Encrypts `minorUnits` (bigint, number or decimal string of minor units) to the tenant's
 * public key: returns the wire bytes of a Deposit/Withdraw/Transfer `amount`.
 */
export function encryptAmount(publicKeyBytes, width, minorUnits) {
  const w = normalizeWidth(width);
  const value = BigInt(minorUnits);
  const max = w === 'u32' ? 0xffffffffn : 0xffffffffffffffffn;
  if (value < 0n || value > max) throw new Error(`amount does not fit a ${w} ledger`);
  const publicKey = decodePublicKey(publicKeyBytes);
  try {
    const builder = tfhe.CompactCiphertextList.builder(publicKey);
    try {
      if (w === 'u32') builder.push_u32(Number(value));
      else builder.push_u64(value);
      const list = builder.build_packed();
      try {
        return Buffer.from(list.safe_serialize(MAX_AMOUNT_BYTES));
      } finally {
        list.free();
      }
    } finally {
      builder.free();
    }
  } finally {
    publicKey.free();
  }
}

/**
 * Reads back a serialized amount the way node-tfhe can (no conformance parameters for
 * lists in the JS API): returns its length and the kind of its first value, e.g.
 * `{ len: 1, kind: 'Uint64' }`.
 */
export function describeAmount(amountBytes) {
  const list = tfhe.CompactCiphertextList.safe_deserialize(toUint8Array(amountBytes), MAX_AMOUNT_BYTES);
  try {
    const kind = list.get_kind_of(0);
    return { len: list.len(), kind: kind === undefined ? null : tfhe.FheTypes[kind] };
  } finally {
    list.free();
  }
}

function toUint8Array(bytes) {
  return bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
}
