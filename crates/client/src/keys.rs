//! Upload of a tenant's keys as a client stream: one header, then server-key chunks.

use blindledger_fhe::LedgerWidth;
use blindledger_proto::ledger::v1 as pb;
use pb::register_tenant_keys_request::Part;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::bounded;
use crate::{width_to_proto, ClientError, LedgerClient};

/// Size of each server-key chunk sent (the ledger accepts up to 4 MiB).
pub const KEY_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// Chunks queued ahead of the transport: small, so that progress reports follow what the
/// transport actually takes.
const QUEUED_CHUNKS: usize = 2;

impl LedgerClient {
    /// Uploads already-serialized tenant keys: `public_key` as made by
    /// [`blindledger_fhe::wire::encode_public_key`], `server_key` as made by
    /// [`blindledger_fhe::wire::encode_compressed_server_key`]. Calls `progress(sent, total)`
    /// as server-key bytes are handed to the transport. Returns the key id, after checking
    /// that it is the id of exactly these two keys ([`blindledger_fhe::wire::key_id`]).
    pub async fn register_key_bytes(
        &self,
        tenant: &str,
        region: &str,
        width: LedgerWidth,
        public_key: Vec<u8>,
        server_key: &[u8],
        mut progress: impl FnMut(u64, u64),
    ) -> Result<String, ClientError> {
        let total = server_key.len() as u64;
        let server_key_sha256 = Sha256::digest(server_key).to_vec();
        let expected_key_id = blindledger_fhe::wire::key_id(&server_key_sha256, &public_key);
        let header = pb::TenantKeysHeader {
            tenant: tenant.to_owned(),
            region: region.to_owned(),
            width: width_to_proto(width) as i32,
            public_key,
            server_key_size: total,
            server_key_sha256,
        };
        let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
        let mut grpc = self.raw();
        let call = grpc.register_tenant_keys(ReceiverStream::new(rx));
        // Feeds the stream from this task so that `progress` needs to be neither `Send`
        // nor `'static`; the call is polled concurrently and drains the channel.
        let feed = async move {
            let request = |part| pb::RegisterTenantKeysRequest { part: Some(part) };
            if tx.send(request(Part::Header(header))).await.is_err() {
                return;
            }
            let mut sent = 0u64;
            progress(0, total);
            for chunk in server_key.chunks(KEY_CHUNK_BYTES) {
                // A closed channel means the call ended early; its status tells why.
                if tx
                    .send(request(Part::ServerKeyChunk(chunk.to_vec())))
                    .await
                    .is_err()
                {
                    return;
                }
                sent += chunk.len() as u64;
                progress(sent, total);
            }
        };
        let (response, ()) = tokio::join!(call, feed);
        let key_id = response?.into_inner().key_id;
        if key_id != expected_key_id {
            return Err(ClientError::KeyMismatch {
                tenant: tenant.to_owned(),
                expected: expected_key_id,
                found: bounded(&key_id),
            });
        }
        Ok(key_id)
    }

    /// Serializes and uploads a tenant's public and compressed server keys, calling
    /// `progress(sent, total)` as server-key bytes are sent. Returns the key id (the hex
    /// SHA-256 over both keys).
    ///
    /// Serializing the server key (tens of MiB) takes a moment of CPU on the calling task;
    /// callers on a busy runtime may serialize in a blocking task and use
    /// [`LedgerClient::register_key_bytes`] instead.
    pub async fn register_keys(
        &self,
        tenant: &str,
        region: &str,
        width: LedgerWidth,
        keys: &blindledger_keyholder::TenantKeys,
        progress: impl FnMut(u64, u64),
    ) -> Result<String, ClientError> {
        let public_key = blindledger_fhe::wire::encode_public_key(&keys.public_key);
        let server_key = blindledger_fhe::wire::encode_compressed_server_key(&keys.server_key);
        self.register_key_bytes(tenant, region, width, public_key, &server_key, progress)
            .await
    }
}
