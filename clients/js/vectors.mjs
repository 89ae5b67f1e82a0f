#!/usr/bin/env node
// Golden test vectors (clients/vectors/): a tenant public key made by the Rust workspace's
// tfhe (version in Cargo.lock) and an amount node-tfhe encrypted to it.
//
//   node clients/js/vectors.mjs make <public.key> [dir]        write the vectors (once per tfhe upgrade)
//   node clients/js/vectors.mjs check [dir] [--public-key F]   offline checks (F: a freshly made key)
//   node clients/js/vectors.mjs submit TENANT/ACCOUNT [dir]    deposit the golden amount; expect COMMITTED
//
// `submit` proves the ledger still accepts the pinned node-tfhe bytes: it decodes amounts with
// conformance checks on parameters, type and count, not on which key made them, so the
// deposit commits on any tenant; the account's balance is then meaningless (the value was
// encrypted to the vectors' key) and the test uses a scratch account for it.
import { readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeAmount, decodePublicKey, encryptAmount, nodeTfheVersion, publicKeyFingerprint } from './lib/tfhe.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const DEFAULT_DIR = join(REPO, 'clients', 'vectors');
const AMOUNT = 2500n; // 25.00 in minor units
const WIDTH = 'u64';

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

function cargoLockTfhe() {
  const lock = readFileSync(join(REPO, 'Cargo.lock'), 'utf8');
  const m = /\[\[package\]\]\nname = "tfhe"\nversion = "([^"]+)"/.exec(lock);
  if (!m) throw new Error('no tfhe package in Cargo.lock');
  return m[1];
}

/** Bytes of the safe-serialization header: everything up to the end of the type name. */
function headerOf(bytes, typeName) {
  const at = Buffer.from(bytes).indexOf(Buffer.from(typeName, 'latin1'));
  if (at < 0) throw new Error(`no ${typeName} in the serialization header`);
  return Buffer.from(bytes.subarray(0, at + typeName.length));
}

const PK_TYPE = 'high_level_api::CompactPublicKey';
const LIST_TYPE = 'high_level_api::CompactCiphertextList';

function make(publicKeyFile, dir = DEFAULT_DIR) {
  mkdirSync(dir, { recursive: true });
  const pk = readFileSync(publicKeyFile);
  decodePublicKey(pk).free();
  const amount = encryptAmount(pk, WIDTH, AMOUNT);
  copyFileSync(publicKeyFile, join(dir, 'public.key'));
  writeFileSync(join(dir, `amount-${WIDTH}-${AMOUNT}.bin`), amount);
  const vectors = {
    comment: 'Made by `node clients/js/vectors.mjs make`; checked by clients/test.sh. See docs/clients.md.',
    tfhe_rs: cargoLockTfhe(),
    node_tfhe: nodeTfheVersion(),
    parameters: {
      compute: 'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128',
      public_key: 'PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128',
      keyswitch: 'PARAM_KEYSWITCH_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128',
    },
    public_key: {
      file: 'public.key',
      made_by: `blindledger keys new (tfhe ${cargoLockTfhe()}); its client and server keys were discarded`,
      bytes: pk.length,
      sha256: publicKeyFingerprint(pk),
      header_hex: headerOf(pk, PK_TYPE).toString('hex'),
    },
    amount: {
      file: `amount-${WIDTH}-${AMOUNT}.bin`,
      made_by: `node-tfhe ${nodeTfheVersion()}: CompactCiphertextList.builder(pk).push_u64(${AMOUNT}n).build_packed().safe_serialize(65536n)`,
      width: WIDTH,
      minor_units: AMOUNT.toString(),
      bytes: amount.length,
      sha256: sha256(amount),
      header_hex: headerOf(amount, LIST_TYPE).toString('hex'),
    },
    expected: {
      node_tfhe_decodes_public_key_conformant: true,
      amount_list: { len: 1, kind: 'Uint64' },
      ledger_deposit: 'accepted, job JOB_STATE_COMMITTED',
      plaintext_minor_units: AMOUNT.toString(),
      // Filled in by hand: only the holder of public.key's client key can check the value.
      verified_by_key_holder: 'not yet: `vectors.mjs submit TENANT/ACCOUNT` to the tenant that owns public.key, then `blindledger balance`',
    },
  };
  writeFileSync(join(dir, 'vectors.json'), `${JSON.stringify(vectors, null, 2)}\n`);
  console.log(JSON.stringify({ made: dir, public_key: vectors.public_key.sha256, amount: vectors.amount.sha256 }));
}

function check(dir = DEFAULT_DIR, freshPublicKey) {
  const v = JSON.parse(readFileSync(join(dir, 'vectors.json'), 'utf8'));
  const problems = [];
  const expect = (ok, what) => {
    if (!ok) problems.push(what);
  };
  expect(v.tfhe_rs === cargoLockTfhe(), `vectors are for tfhe ${v.tfhe_rs}, Cargo.lock has ${cargoLockTfhe()}: remake them`);
  expect(v.node_tfhe === nodeTfheVersion(), `vectors made with node-tfhe ${v.node_tfhe}, installed ${nodeTfheVersion()}`);

  const pk = readFileSync(join(dir, v.public_key.file));
  expect(publicKeyFingerprint(pk) === v.public_key.sha256, 'public.key differs from its pinned sha256');
  try {
    decodePublicKey(pk).free();
  } catch (err) {
    problems.push(`node-tfhe cannot decode the pinned public key: ${err.message ?? err}`);
  }

  const golden = readFileSync(join(dir, v.amount.file));
  expect(sha256(golden) === v.amount.sha256, 'the golden amount differs from its pinned sha256');
  const shape = describeAmount(golden);
  expect(
    shape.len === v.expected.amount_list.len && shape.kind === v.expected.amount_list.kind,
    `golden amount reads as ${JSON.stringify(shape)}`,
  );

  // node-tfhe today: same framing as the pinned ciphertext (only the random parts differ).
  const fresh = encryptAmount(pk, v.amount.width, BigInt(v.amount.minor_units));
  expect(fresh.length === v.amount.bytes, `fresh node-tfhe amount is ${fresh.length} bytes, pinned ${v.amount.bytes}`);
  expect(headerOf(fresh, LIST_TYPE).toString('hex') === v.amount.header_hex, 'fresh amount has another serialization header');
  const freshShape = describeAmount(fresh);
  expect(freshShape.len === 1 && freshShape.kind === 'Uint64', `fresh amount reads as ${JSON.stringify(freshShape)}`);

  // The Rust side today: a key made by `blindledger keys new` has the pinned key's framing.
  if (freshPublicKey) {
    const key = readFileSync(freshPublicKey);
    expect(key.length === v.public_key.bytes, `a key made now is ${key.length} bytes, pinned ${v.public_key.bytes}`);
    expect(headerOf(key, PK_TYPE).toString('hex') === v.public_key.header_hex, 'a key made now has another serialization header');
  }
  if (problems.length) {
    for (const p of problems) console.error(`vectors: FAIL: ${p}`);
    process.exit(1);
  }
  console.log(
    JSON.stringify({
      vectors: 'ok',
      tfhe_rs: v.tfhe_rs,
      node_tfhe: nodeTfheVersion(),
      public_key_bytes: pk.length,
      amount_bytes: golden.length,
      fresh_public_key_checked: Boolean(freshPublicKey),
    }),
  );
}

async function submit(ref, dir = DEFAULT_DIR) {
  const { Ledger } = await import('./lib/ledger.mjs');
  const [tenant, account] = ref.split('/');
  const v = JSON.parse(readFileSync(join(dir, 'vectors.json'), 'utf8'));
  const golden = readFileSync(join(dir, v.amount.file));
  const token =
    process.env.BLINDLEDGER_TOKEN ??
    readFileSync(join(process.env.BLINDLEDGER_HOME ?? '.', 'token'), 'utf8').trim();
  const ledger = new Ledger(process.env.BLINDLEDGER_ENDPOINT ?? 'http://127.0.0.1:50051', { token });
  try {
    const job = await ledger.deposit(tenant, account, golden, `golden-${v.amount.sha256.slice(0, 16)}-${Date.now()}`);
    const done = await ledger.waitJob(job.id);
    console.log(JSON.stringify({ golden_deposit: done.id, state: done.state, failure_reason: done.failure_reason || undefined }));
    if (done.state !== 'JOB_STATE_COMMITTED') process.exit(1);
  } finally {
    ledger.close();
  }
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'make' && rest[0]) make(rest[0], rest[1]);
  else if (cmd === 'check') {
    const i = rest.indexOf('--public-key');
    const fresh = i >= 0 ? rest.splice(i, 2)[1] : undefined;
    check(rest[0], fresh);
  } else if (cmd === 'submit' && rest[0]) await submit(rest[0], rest[1]);
  else {
    console.error('usage: vectors.mjs make <public.key> [dir] | check [dir] [--public-key F] | submit TENANT/ACCOUNT [dir]');
    process.exit(2);
  }
} catch (err) {
  console.error(`vectors.mjs: ${err.message ?? err}`);
  process.exit(1);
}
