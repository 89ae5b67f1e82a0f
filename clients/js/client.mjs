#!/usr/bin/env node
// BlindLedger JavaScript client: encrypts amounts with node-tfhe to the tenant's pinned
// compact public key (fetched with GetTenant) and calls LedgerService over gRPC.
//
//   node clients/js/client.mjs [options] tenant <tenant>
//   node clients/js/client.mjs [options] deposit <tenant>/<account> <amount> [--wait]
//   node clients/js/client.mjs [options] transfer <tenant>/<from> <to> <amount> [--wait]
//   node clients/js/client.mjs [options] job <job id> [--results]
//   node clients/js/client.mjs [options] watch <job id>
//   node clients/js/client.mjs [options] transfers <tenant>/<account>
//
// Options (environment variable in brackets):
//   --endpoint URL          ledger gRPC endpoint [BLINDLEDGER_ENDPOINT], default http://127.0.0.1:50051
//   --token JWT             bearer token [BLINDLEDGER_TOKEN]
//   --token-file FILE       file holding the token; default <BLINDLEDGER_HOME>/token when it exists
//   --pin HEX               the tenant's public-key fingerprint (blindledger keys show) [BLINDLEDGER_PIN]
//   --public-key-file FILE  or pin the key holder's public.key file itself
//   --idempotency-key KEY   default: a random UUID
//   --wait                  wait for the job (WatchJob) and exit 1 if it failed
//   --tls-ca FILE, --allow-plaintext   as the Rust CLI
//
// Amounts are decimal currency units with at most two decimals (25.50); the ledger gets
// minor units (2550). Output: one JSON object per line on stdout.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ledger } from './lib/ledger.mjs';
import { checkPin, encryptAmount, publicKeyFingerprint } from './lib/tfhe.mjs';
import { parseAmount } from './lib/amount.mjs';

const USAGE = `usage: client.mjs [--endpoint URL] [--token JWT | --token-file FILE] [--pin HEX | --public-key-file FILE]
                 (tenant T | deposit T/A AMOUNT | transfer T/FROM TO AMOUNT | job ID | watch ID | transfers T/A) [--wait]`;

function fail(message) {
  process.stderr.write(`client.mjs: ${message}\n`);
  process.exit(1);
}

function out(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function splitAccount(ref) {
  const m = /^([^/]+)\/([^/]+)$/.exec(ref ?? '');
  if (!m) fail(`expected TENANT/ACCOUNT, got '${ref}'`);
  return [m[1], m[2]];
}

/** A job without its ciphertexts (they mean nothing without the tenant's client key). */
function summary(job) {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    tenant: job.tenant,
    accounts: job.accounts,
    attempts: job.attempts,
    failure_reason: job.failure_reason || undefined,
    result: job.result || undefined,
  };
}

function readToken(values) {
  if (values.token) return values.token;
  if (process.env.BLINDLEDGER_TOKEN) return process.env.BLINDLEDGER_TOKEN;
  const file =
    values['token-file'] ??
    (process.env.BLINDLEDGER_HOME ? join(process.env.BLINDLEDGER_HOME, 'token') : undefined);
  if (file && existsSync(file)) return readFileSync(file, 'utf8').trim();
  if (values['token-file']) fail(`no token file ${values['token-file']}`);
  return undefined;
}

function pinFor(values) {
  if (values['public-key-file']) return publicKeyFingerprint(readFileSync(values['public-key-file']));
  const pin = values.pin ?? process.env.BLINDLEDGER_PIN;
  if (!pin) {
    fail('encrypting needs the tenant\'s key pinned: --pin <fingerprint from `blindledger keys show`> or --public-key-file');
  }
  return pin;
}

/** Fetches the tenant (GetTenant), checks its key against the pin, encrypts the amount. */
async function encryptTo(ledger, tenant, amountText, values) {
  const minor = parseAmount(amountText);
  const info = await ledger.getTenant(tenant);
  checkPin(tenant, info.public_key, pinFor(values));
  return { bytes: encryptAmount(info.public_key, info.width, minor), minor, width: info.width };
}

async function finish(ledger, job, values) {
  out({ submitted: summary(job) });
  if (!values.wait) return 0;
  const done = await ledger.waitJob(job.id, {
    onState: (j) => process.stderr.write(`job ${j.id}: ${j.state}\n`),
  });
  out({ job: summary(done) });
  return done.state === 'JOB_STATE_COMMITTED' ? 0 : 1;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      endpoint: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      pin: { type: 'string' },
      'public-key-file': { type: 'string' },
      'idempotency-key': { type: 'string' },
      wait: { type: 'boolean', default: false },
      results: { type: 'boolean', default: false },
      'tls-ca': { type: 'string' },
      'allow-plaintext': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const endpoint = values.endpoint ?? process.env.BLINDLEDGER_ENDPOINT ?? 'http://127.0.0.1:50051';
  const ledger = new Ledger(endpoint, {
    token: readToken(values),
    tlsCa: values['tls-ca'],
    allowPlaintext: values['allow-plaintext'],
  });
  const key = values['idempotency-key'];
  const [verb, ...args] = positionals;
  try {
    switch (verb) {
      case 'tenant': {
        const info = await ledger.getTenant(args[0]);
        out({
          tenant: info.tenant,
          region: info.region,
          width: info.width,
          key_id: info.key_id,
          public_key_bytes: info.public_key.length,
          fingerprint: publicKeyFingerprint(info.public_key),
        });
        return 0;
      }
      case 'deposit': {
        if (args.length !== 2) fail(USAGE);
        const [tenant, account] = splitAccount(args[0]);
        const amount = await encryptTo(ledger, tenant, args[1], values);
        process.stderr.write(
          `encrypted ${amount.minor} minor units for a ${amount.width} ledger: ${amount.bytes.length} bytes\n`,
        );
        return await finish(ledger, await ledger.deposit(tenant, account, amount.bytes, key), values);
      }
      case 'transfer': {
        if (args.length !== 3) fail(USAGE);
        const [tenant, from] = splitAccount(args[0]);
        let to = args[1];
        if (to.includes('/')) {
          const [toTenant, toAccount] = splitAccount(to);
          if (toTenant !== tenant) fail('transfers stay within one tenant');
          to = toAccount;
        }
        const amount = await encryptTo(ledger, tenant, args[2], values);
        process.stderr.write(
          `encrypted ${amount.minor} minor units for a ${amount.width} ledger: ${amount.bytes.length} bytes\n`,
        );
        return await finish(ledger, await ledger.transfer(tenant, from, to, amount.bytes, key), values);
      }
      case 'job': {
        const job = await ledger.getJob(args[0], values.results);
        out({ job: summary(job) });
        return 0;
      }
      case 'watch': {
        const job = await ledger.waitJob(args[0], { onState: (j) => out({ state: j.state }) });
        out({ job: summary(job) });
        return job.state === 'JOB_STATE_COMMITTED' ? 0 : 1;
      }
      case 'transfers': {
        const [tenant, account] = splitAccount(args[0]);
        const page = await ledger.listTransfers(tenant, account);
        for (const t of page.transfers) out(t);
        return 0;
      }
      default:
        fail(`unknown command '${verb}'\n${USAGE}`);
    }
  } finally {
    ledger.close();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => fail(err.message ?? String(err)),
);
