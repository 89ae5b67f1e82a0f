#!/usr/bin/env python3
"""BlindLedger Python client: LedgerService stubs built at run time from gRPC reflection.

No generated code: the client asks the ledger's reflection service (v1, falling back to
v1alpha) for the file descriptors of ``blindledger.ledger.v1.LedgerService``, loads them into
a private protobuf ``DescriptorPool`` and builds message classes and method callables from it.

There is no Python library that reads tfhe-rs's serialization, so input amounts are
encrypted by the JavaScript helper ``clients/js/encrypt.mjs`` (node-tfhe), run as a
subprocess, after this client has checked the tenant's public key against its pin.

    python3 clients/python/blindledger_client.py [options] services
    python3 clients/python/blindledger_client.py [options] tenant TENANT
    python3 clients/python/blindledger_client.py [options] deposit TENANT/ACCOUNT AMOUNT [--wait]
    python3 clients/python/blindledger_client.py [options] transfer TENANT/FROM TO AMOUNT [--wait]
    python3 clients/python/blindledger_client.py [options] job JOB_ID [--results]
    python3 clients/python/blindledger_client.py [options] transfers TENANT/ACCOUNT

Prints one JSON object per line on stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2

SERVICE = "blindledger.ledger.v1.LedgerService"
# v1 and v1alpha reflection use the same messages under another package name, so the
# v1alpha classes that grpcio-reflection ships serve both paths.
REFLECTION_PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
ENCRYPT_HELPER = Path(__file__).resolve().parent.parent / "js" / "encrypt.mjs"
TERMINAL = {"JOB_STATE_COMMITTED", "JOB_STATE_FAILED"}
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ClientError(Exception):
    """A failure to report on one line."""


# --- channel and bearer token -------------------------------------------------------------


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call, reflection included."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token.strip()}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or []) + [self._header]
        return _CallDetails(details, metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, metadata):
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


def open_channel(
    endpoint: str, token: Optional[str], tls_ca: Optional[str], allow_plaintext: bool
) -> grpc.Channel:
    """``http://host:port`` (plaintext, loopback only), ``https://host:port`` or ``host:port``."""
    match = re.fullmatch(r"(https?)://(.*?)/?", endpoint)
    scheme, target = (match.group(1), match.group(2)) if match else ("http", endpoint)
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if scheme == "https":
        root = Path(tls_ca).read_bytes() if tls_ca else None
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root), options)
    else:
        host = re.sub(r":\d+$", "", target).strip("[]")
        if not (host in ("localhost", "::1") or host.startswith("127.")) and not allow_plaintext:
            raise ClientError(
                f"plaintext http is only accepted for a ledger on this host, not {host}"
            )
        channel = grpc.insecure_channel(target, options)
    if token:
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return channel


# --- descriptors through reflection -------------------------------------------------------


def _reflect(channel: grpc.Channel, requests: List[Any]) -> List[Any]:
    """Sends reflection requests over v1, or v1alpha when the server lacks v1.

    ``BLINDLEDGER_REFLECTION=v1alpha`` (or ``v1``) uses that version only.
    """
    only = os.environ.get("BLINDLEDGER_REFLECTION")
    paths = [p for p in REFLECTION_PATHS if not only or f".{only}." in p]
    if not paths:
        raise ClientError(f"BLINDLEDGER_REFLECTION={only}: expected v1 or v1alpha")
    last_error: Optional[grpc.RpcError] = None
    for path in paths:
        call = channel.stream_stream(
            path,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        try:
            responses = list(call(iter(requests), timeout=30))
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                last_error = err
                continue
            raise
        for response in responses:
            if response.HasField("error_response"):
                raise ClientError(
                    f"reflection: {response.error_response.error_message} "
                    f"(code {response.error_response.error_code})"
                )
        _reflect.version = path.split(".")[2].split("/")[0]  # type: ignore[attr-defined]
        return responses
    raise ClientError(f"the server offers no gRPC reflection: {last_error}")


def load_pool(channel: grpc.Channel, symbol: str = SERVICE) -> descriptor_pool.DescriptorPool:
    """Fetches the file defining ``symbol`` and every file it imports into a fresh pool."""
    files: Dict[str, bytes] = {}

    def take(responses: Iterable[Any]) -> None:
        for response in responses:
            for raw in response.file_descriptor_response.file_descriptor_proto:
                proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
                files.setdefault(proto.name, raw)

    take(_reflect(channel, [reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)]))
    while True:  # imports the server did not send along
        missing = sorted(
            {
                dep
                for raw in files.values()
                for dep in descriptor_pb2.FileDescriptorProto.FromString(raw).dependency
            }
            - files.keys()
        )
        if not missing:
            break
        take(
            _reflect(
                channel,
                [reflection_pb2.ServerReflectionRequest(file_by_filename=name) for name in missing],
            )
        )

    pool = descriptor_pool.DescriptorPool()
    added: set = set()

    def add(name: str) -> None:
        if name in added:
            return
        proto = descriptor_pb2.FileDescriptorProto.FromString(files[name])
        for dep in proto.dependency:
            add(dep)
        pool.AddSerializedFile(files[name])
        added.add(name)

    for name in list(files):
        add(name)
    return pool


class Ledger:
    """LedgerService methods as callables, built from the reflected descriptors."""

    def __init__(self, channel: grpc.Channel):
        self.channel = channel
        self.pool = load_pool(channel)
        self.service = self.pool.FindServiceByName(SERVICE)
        self.reflection_version = getattr(_reflect, "version", "?")
        self._methods: Dict[str, Callable] = {}
        for method in self.service.methods:
            request = message_factory.GetMessageClass(method.input_type)
            response = message_factory.GetMessageClass(method.output_type)
            path = f"/{self.service.full_name}/{method.name}"
            kinds = {
                (False, False): channel.unary_unary,
                (False, True): channel.unary_stream,
                (True, False): channel.stream_unary,
                (True, True): channel.stream_stream,
            }
            make = kinds[(method.client_streaming, method.server_streaming)]
            self._methods[method.name] = make(
                path,
                request_serializer=request.SerializeToString,
                response_deserializer=response.FromString,
            )

    def message(self, name: str, **fields: Any) -> Any:
        """A request message of the package, e.g. ``message("DepositRequest", tenant=...)``."""
        cls = message_factory.GetMessageClass(
            self.pool.FindMessageTypeByName(f"blindledger.ledger.v1.{name}")
        )
        return cls(**fields)

    def call(self, method: str, request: Any, timeout: float = 120.0) -> Any:
        try:
            return self._methods[method](request, timeout=timeout)
        except grpc.RpcError as err:
            raise ClientError(f"{method}: {err.code().name}: {err.details()}") from None

    def enum_name(self, message: Any, field: str) -> str:
        enum = message.DESCRIPTOR.fields_by_name[field].enum_type
        return enum.values_by_number[getattr(message, field)].name

    def wait_job(self, job_id: str, timeout: float = 600.0, on_state=None) -> Any:
        """Follows WatchJob until the job is committed or failed; GetJob when the stream breaks."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError(f"job {job_id} did not finish within {timeout:.0f} s")
            try:
                stream: Iterator[Any] = self._methods["WatchJob"](
                    self.message("WatchJobRequest", id=job_id), timeout=remaining
                )
                for update in stream:
                    state = self.enum_name(update.job, "state")
                    if on_state:
                        on_state(update.job, state)
                    if state in TERMINAL:
                        stream.cancel()  # type: ignore[attr-defined]
                        return update.job
            except grpc.RpcError as err:
                if err.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.CANCELLED,
                ):
                    raise ClientError(f"WatchJob: {err.code().name}: {err.details()}") from None
            job = self.call("GetJob", self.message("GetJobRequest", id=job_id)).job
            if self.enum_name(job, "state") in TERMINAL:
                return job
            time.sleep(0.5)


# --- amounts and encryption ---------------------------------------------------------------


def parse_amount(text: str) -> int:
    """Decimal currency units with at most two decimals -> minor units (as the Rust CLI)."""
    text = text.strip()
    match = re.fullmatch(r"(\d+)(?:\.(\d{1,2}))?", text)
    if not match:
        raise ClientError(f"'{text}' is not a decimal amount such as 25.50 (at most 2 decimals)")
    cents = int(match.group(1)) * 100 + int((match.group(2) or "").ljust(2, "0"))
    if cents >= 1 << 64:
        raise ClientError(f"'{text}' is too large")
    return cents


def fingerprint(public_key: bytes) -> str:
    """Hex SHA-256 of the serialized public key, as `blindledger keys show` prints it."""
    return hashlib.sha256(public_key).hexdigest()


def encrypt_amount(public_key: bytes, minor_units: int, width: str) -> bytes:
    """Runs the node-tfhe helper: packed CompactCiphertextList of one value of the width."""
    node = os.environ.get("BLINDLEDGER_NODE", "node")
    result = subprocess.run(
        [node, str(ENCRYPT_HELPER), "-", str(minor_units), width],
        input=base64.b64encode(public_key).decode(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ClientError(f"encrypt.mjs failed ({result.returncode}): {result.stderr.strip()}")
    return base64.b64decode(result.stdout.strip())


# --- command line -------------------------------------------------------------------------


def split_account(ref: str) -> List[str]:
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        raise ClientError(f"expected TENANT/ACCOUNT, got '{ref}'")
    return parts


def job_summary(ledger: Ledger, job: Any) -> Dict[str, Any]:
    return {
        "id": job.id,
        "kind": ledger.enum_name(job, "kind"),
        "state": ledger.enum_name(job, "state"),
        "tenant": job.tenant,
        "accounts": list(job.accounts),
        "attempts": job.attempts,
        "failure_reason": job.failure_reason or None,
        "result": job.WhichOneof("result"),
    }


def out(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def read_token(args: argparse.Namespace) -> Optional[str]:
    if args.token:
        return args.token
    if os.environ.get("BLINDLEDGER_TOKEN"):
        return os.environ["BLINDLEDGER_TOKEN"]
    path = args.token_file
    if path is None and os.environ.get("BLINDLEDGER_HOME"):
        path = os.path.join(os.environ["BLINDLEDGER_HOME"], "token")
        if not os.path.exists(path):
            return None
    return Path(path).read_text().strip() if path else None


def encrypted(ledger: Ledger, args: argparse.Namespace, tenant: str, amount: str) -> bytes:
    minor = parse_amount(amount)
    pin = (args.pin or os.environ.get("BLINDLEDGER_PIN") or "").strip().lower()
    if args.public_key_file:
        pin = fingerprint(Path(args.public_key_file).read_bytes())
    if not re.fullmatch(r"[0-9a-f]{64}", pin):
        raise ClientError(
            "encrypting needs the tenant's key pinned: --pin <fingerprint from "
            "`blindledger keys show`> or --public-key-file"
        )
    info = ledger.call("GetTenant", ledger.message("GetTenantRequest", tenant=tenant))
    found = fingerprint(info.public_key)
    if found != pin:
        raise ClientError(
            f"the ledger returned a public key for {tenant} with fingerprint {found}, "
            f"expected {pin}: refusing to use it"
        )
    width = ledger.enum_name(info, "width")
    data = encrypt_amount(info.public_key, minor, width)
    print(f"encrypted {minor} minor units for a {width} ledger: {len(data)} bytes", file=sys.stderr)
    return data


def finish(ledger: Ledger, job: Any, wait: bool) -> int:
    out({"submitted": job_summary(ledger, job)})
    if not wait:
        return 0
    done = ledger.wait_job(
        job.id, on_state=lambda j, s: print(f"job {j.id}: {s}", file=sys.stderr, flush=True)
    )
    out({"job": job_summary(ledger, done)})
    return 0 if ledger.enum_name(done, "state") == "JOB_STATE_COMMITTED" else 1


def run(args: argparse.Namespace) -> int:
    endpoint = args.endpoint or os.environ.get("BLINDLEDGER_ENDPOINT", "http://127.0.0.1:50051")
    channel = open_channel(endpoint, read_token(args), args.tls_ca, args.allow_plaintext)
    ledger = Ledger(channel)
    print(
        f"stubs for {SERVICE} built from reflection {ledger.reflection_version}: "
        f"{', '.join(m.name for m in ledger.service.methods)}",
        file=sys.stderr,
    )
    key = args.idempotency_key or str(uuid.uuid4())
    rest = args.args
    if args.command == "services":
        for method in ledger.service.methods:
            out(
                {
                    "method": method.full_name,
                    "input": method.input_type.full_name,
                    "output": method.output_type.full_name,
                    "server_streaming": method.server_streaming,
                }
            )
        return 0
    if args.command == "tenant":
        info = ledger.call("GetTenant", ledger.message("GetTenantRequest", tenant=rest[0]))
        out(
            {
                "tenant": info.tenant,
                "region": info.region,
                "width": ledger.enum_name(info, "width"),
                "key_id": info.key_id,
                "fingerprint": fingerprint(info.public_key),
            }
        )
        return 0
    if args.command == "deposit":
        if len(rest) != 2:
            raise ClientError("deposit TENANT/ACCOUNT AMOUNT")
        tenant, account = split_account(rest[0])
        request = ledger.message(
            "DepositRequest",
            tenant=tenant,
            account=account,
            amount=encrypted(ledger, args, tenant, rest[1]),
            idempotency_key=key,
        )
        return finish(ledger, ledger.call("Deposit", request).job, args.wait)
    if args.command == "transfer":
        if len(rest) != 3:
            raise ClientError("transfer TENANT/FROM TO AMOUNT")
        tenant, source = split_account(rest[0])
        target = rest[1]
        if "/" in target:
            to_tenant, target = split_account(target)
            if to_tenant != tenant:
                raise ClientError("transfers stay within one tenant")
        request = ledger.message(
            "TransferRequest",
            tenant=tenant,
            from_account=source,
            to_account=target,
            amount=encrypted(ledger, args, tenant, rest[2]),
            idempotency_key=key,
        )
        return finish(ledger, ledger.call("Transfer", request).job, args.wait)
    if args.command == "job":
        request = ledger.message("GetJobRequest", id=rest[0], include_results=args.results)
        out({"job": job_summary(ledger, ledger.call("GetJob", request).job)})
        return 0
    if args.command == "transfers":
        tenant, account = split_account(rest[0])
        page = ledger.call(
            "ListTransfers", ledger.message("ListTransfersRequest", tenant=tenant, account=account)
        )
        for transfer in page.transfers:
            out(
                {
                    "job_id": transfer.job_id,
                    "from_account": transfer.from_account,
                    "to_account": transfer.to_account,
                    "state": ledger.enum_name(transfer, "state"),
                    "created_at": transfer.created_at.ToJsonString(),
                }
            )
        return 0
    raise ClientError(f"unknown command {args.command}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", help="ledger gRPC endpoint [BLINDLEDGER_ENDPOINT]")
    parser.add_argument("--token", help="bearer token (JWT) [BLINDLEDGER_TOKEN]")
    parser.add_argument("--token-file", help="file holding the token [<BLINDLEDGER_HOME>/token]")
    parser.add_argument("--pin", help="tenant public-key fingerprint [BLINDLEDGER_PIN]")
    parser.add_argument("--public-key-file", help="pin the key holder's public.key itself")
    parser.add_argument("--idempotency-key", help="default: a random UUID")
    parser.add_argument("--wait", action="store_true", help="wait for the job (WatchJob)")
    parser.add_argument("--results", action="store_true", help="job: include results")
    parser.add_argument("--tls-ca")
    parser.add_argument("--allow-plaintext", action="store_true")
    parser.add_argument(
        "command", choices=["services", "tenant", "deposit", "transfer", "job", "transfers"]
    )
    parser.add_argument("args", nargs="*")
    args = parser.parse_intermixed_args(argv)
    try:
        return run(args)
    except ClientError as err:
        print(f"blindledger_client.py: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
