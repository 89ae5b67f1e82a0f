//! Tenant key registration (`blindledger_ledger::Ledger::register_keys`): the header of a
//! `RegisterTenantKeys` stream (tenant, region, width, public key, announced server-key
//! size and SHA-256) and the server-key chunks after it, as the gRPC adapter hands them
//! over, against a ledger on a scratch SQLite database and in-memory key storage.
//!
//! The public key is either arbitrary bytes or a valid key made at start-up, so that the
//! chunk handling behind the public-key check is reached; the announced size and digest
//! are either arbitrary or those of the chunks sent.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use blindledger_fhe::{tfhe_config, wire, FheExecutor, LedgerWidth};
use blindledger_fuzz::scratch_sqlite_url;
use blindledger_ledger::{KeyUpload, Ledger, LedgerError};
use blindledger_store::{Db, KeyBlobStore};
use libfuzzer_sys::fuzz_target;
use object_store::memory::InMemory;
use sha2::{Digest as _, Sha256};
use tokio::runtime::Runtime;

#[derive(Debug, Arbitrary)]
struct Upload {
    tenant: String,
    region: String,
    wide: bool,
    public_key: PublicKey,
    size: Size,
    digest: Digest,
    chunks: Vec<Chunk>,
}

#[derive(Debug, Arbitrary)]
enum PublicKey {
    Valid,
    Bytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Size {
    OfChunks,
    OfChunksPlus(i8),
    Announced(u64),
}

#[derive(Debug, Arbitrary)]
enum Digest {
    OfChunks,
    Bytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Chunk {
    Bytes(Vec<u8>),
    /// A message that is not a chunk, or a broken stream, as the gRPC adapter reports it.
    Refused,
}

struct Fixture {
    runtime: Runtime,
    ledger: Ledger,
    public_key: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let url = scratch_sqlite_url("key-upload");
        let db = runtime.block_on(async {
            let db = Db::connect(&url, 1).await.expect("scratch database");
            db.migrate().await.expect("migrations");
            db
        });
        let blobs = KeyBlobStore::new(Arc::new(InMemory::new()));
        let fhe = Arc::new(FheExecutor::new(1, 1).expect("FHE executor"));
        let client_key = tfhe::ClientKey::generate(tfhe_config());
        let public_key = wire::encode_public_key(&tfhe::CompactPublicKey::new(&client_key));
        Fixture {
            runtime,
            ledger: Ledger::new(db, blobs, fhe),
            public_key,
        }
    })
}

fuzz_target!(|upload: Upload| {
    let fixture = fixture();
    let chunk_bytes: u64 = upload
        .chunks
        .iter()
        .map(|chunk| match chunk {
            Chunk::Bytes(bytes) => bytes.len() as u64,
            Chunk::Refused => 0,
        })
        .sum();
    let server_key_size = match upload.size {
        Size::OfChunks => chunk_bytes,
        Size::OfChunksPlus(delta) => chunk_bytes.saturating_add_signed(i64::from(delta)),
        Size::Announced(size) => size,
    };
    let server_key_sha256 = match upload.digest {
        Digest::OfChunks => {
            let mut hasher = Sha256::new();
            for chunk in &upload.chunks {
                if let Chunk::Bytes(bytes) = chunk {
                    hasher.update(bytes);
                }
            }
            hasher.finalize().to_vec()
        }
        Digest::Bytes(bytes) => bytes,
    };
    let header = KeyUpload {
        tenant: upload.tenant,
        region: upload.region,
        width: if upload.wide {
            LedgerWidth::U64
        } else {
            LedgerWidth::U32
        },
        public_key: match upload.public_key {
            PublicKey::Valid => fixture.public_key.clone(),
            PublicKey::Bytes(bytes) => bytes,
        },
        server_key_size,
        server_key_sha256,
    };
    let chunks = futures::stream::iter(upload.chunks.into_iter().map(|chunk| match chunk {
        Chunk::Bytes(bytes) => Ok(bytes),
        Chunk::Refused => Err(LedgerError::InvalidArgument(
            "only server key chunks may follow the header".into(),
        )),
    }));
    let outcome = fixture
        .runtime
        .block_on(fixture.ledger.register_keys(header, chunks));
    // No input here holds a valid compressed server key: nothing may be registered.
    assert!(outcome.is_err(), "registered keys: {outcome:?}");
});
