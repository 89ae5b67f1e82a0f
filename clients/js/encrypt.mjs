#!/usr/bin/env node
// Encrypts one amount to a tenant's compact public key, for clients in languages without a
// tfhe-rs-compatible TFHE library (the Python client uses it).
//
//   node clients/js/encrypt.mjs <public key, base64 | -> <amount in minor units> <u32|u64|LEDGER_WIDTH_U64|...>
//
// With `-`, the base64 public key is read from stdin (a 33 KB key is 44 KB of base64).
// Prints the safe-serialized packed CompactCiphertextList, base64, on stdout. The caller
// is responsible for having checked the public key against its pin.
import { readFileSync } from 'node:fs';
import { encryptAmount } from './lib/tfhe.mjs';

const [keyArg, minor, width] = process.argv.slice(2);
if (!keyArg || minor === undefined || !width || !/^\d+$/.test(minor)) {
  process.stderr.write('usage: encrypt.mjs <public key base64 | -> <amount minor units> <u32|u64>\n');
  process.exit(2);
}
try {
  const b64 = keyArg === '-' ? readFileSync(0, 'utf8') : keyArg;
  const publicKey = Buffer.from(b64.trim(), 'base64');
  const amount = encryptAmount(publicKey, width, BigInt(minor));
  process.stdout.write(`${amount.toString('base64')}\n`);
} catch (err) {
  process.stderr.write(`encrypt.mjs: ${err.message ?? err}\n`);
  process.exit(1);
}
