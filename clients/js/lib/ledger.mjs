// gRPC access to BlindLedger's LedgerService with @grpc/grpc-js, the service definition
// loaded at run time from proto/blindledger/ledger/v1/ledger.proto by @grpc/proto-loader.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository's proto directory (clients/js/lib -> repository root). */
export const PROTO_ROOT = join(HERE, '..', '..', '..', 'proto');
export const PROTO_FILE = 'blindledger/ledger/v1/ledger.proto';

const TERMINAL = new Set(['JOB_STATE_COMMITTED', 'JOB_STATE_FAILED']);

/** Loads the LedgerService client constructor from the .proto file. */
export function loadLedgerService(protoRoot = PROTO_ROOT) {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [protoRoot],
    keepCase: true, // field names as in the .proto: idempotency_key, from_account, ...
    longs: String, // uint64 fields as decimal strings
    enums: String, // enum values by name: LEDGER_WIDTH_U64, JOB_STATE_COMMITTED, ...
    defaults: true,
    oneofs: true, // Job.result names the oneof field set
  });
  const pkg = grpc.loadPackageDefinition(definition);
  return pkg.blindledger.ledger.v1.LedgerService;
}

/**
 * Parses an endpoint: `http://host:port` (plaintext, loopback only unless allowPlaintext),
 * `https://host:port` (TLS, CA from tlsCa or the system roots) or a bare `host:port`
 * (treated as http://).
 */
export function channelFor(endpoint, { tlsCa, allowPlaintext = false } = {}) {
  let scheme = 'http';
  let target = endpoint;
  const m = /^(https?):\/\/(.*?)\/?$/.exec(endpoint);
  if (m) {
    scheme = m[1];
    target = m[2];
  }
  if (scheme === 'https') {
    const ca = tlsCa ? readFileSync(tlsCa) : undefined;
    return { target, credentials: grpc.credentials.createSsl(ca) };
  }
  const host = target.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  if (!loopback && !allowPlaintext) {
    throw new Error(`plaintext http is only accepted for a ledger on this host, not ${host}; use https://`);
  }
  return { target, credentials: grpc.credentials.createInsecure() };
}

/** A LedgerService client whose every call carries `authorization: Bearer <token>`. */
export class Ledger {
  constructor(endpoint, { token, tlsCa, allowPlaintext, protoRoot } = {}) {
    const Service = loadLedgerService(protoRoot);
    const { target, credentials } = channelFor(endpoint, { tlsCa, allowPlaintext });
    this.client = new Service(target, credentials, {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    this.token = token ? String(token).trim() : undefined;
  }

  metadata() {
    const md = new grpc.Metadata();
    if (this.token) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  /** Calls a unary method; resolves with the response, rejects with the gRPC error. */
  call(method, request, { timeoutMs = 120_000 } = {}) {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMs);
      this.client[method](request, this.metadata(), { deadline }, (err, response) =>
        err ? reject(decorate(err, method)) : resolve(response),
      );
    });
  }

  getTenant(tenant) {
    return this.call('GetTenant', { tenant });
  }

  deposit(tenant, account, amountBytes, idempotencyKey = randomUUID()) {
    return this.call('Deposit', {
      tenant,
      account,
      amount: amountBytes,
      idempotency_key: idempotencyKey,
    }).then((r) => r.job);
  }

  transfer(tenant, fromAccount, toAccount, amountBytes, idempotencyKey = randomUUID()) {
    return this.call('Transfer', {
      tenant,
      from_account: fromAccount,
      to_account: toAccount,
      amount: amountBytes,
      idempotency_key: idempotencyKey,
    }).then((r) => r.job);
  }

  getJob(id, includeResults = false) {
    return this.call('GetJob', { id, include_results: includeResults }).then((r) => r.job);
  }

  listTransfers(tenant, account, pageSize = 50) {
    return this.call('ListTransfers', { tenant, account, page_size: pageSize });
  }

  /**
   * Waits until the job is committed or failed: follows WatchJob, and when the stream
   * breaks off (UNAVAILABLE, a restart), asks GetJob and watches again. Resolves with
   * the final job (GetJob's, with results when includeResults).
   */
  async waitJob(id, { timeoutMs = 600_000, includeResults = false, onState } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`job ${id} did not finish within ${timeoutMs} ms`);
      let last;
      try {
        last = await this.#watch(id, remaining, onState);
      } catch (err) {
        if (err.code !== grpc.status.UNAVAILABLE && err.code !== grpc.status.DEADLINE_EXCEEDED) throw err;
      }
      if (last && TERMINAL.has(last.state) && !includeResults) return last;
      const job = await this.getJob(id, includeResults);
      if (TERMINAL.has(job.state)) return job;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  #watch(id, timeoutMs, onState) {
    return new Promise((resolve, reject) => {
      const stream = this.client.WatchJob({ id }, this.metadata(), {
        deadline: new Date(Date.now() + timeoutMs),
      });
      let last;
      stream.on('data', (msg) => {
        last = msg.job;
        if (onState) onState(last);
        if (TERMINAL.has(last.state)) {
          resolve(last);
          stream.cancel();
        }
      });
      stream.on('error', (err) => {
        if (err.code === grpc.status.CANCELLED && last && TERMINAL.has(last.state)) return;
        reject(decorate(err, 'WatchJob'));
      });
      stream.on('end', () => resolve(last));
    });
  }

  close() {
    this.client.close();
  }
}

function decorate(err, method) {
  const name = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code) ?? err.code;
  err.message = `${method}: ${name}: ${err.details ?? err.message}`;
  return err;
}

export { grpc };
