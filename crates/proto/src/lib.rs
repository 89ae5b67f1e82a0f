//! Generated protobuf and gRPC types for BlindLedger's APIs.

/// `blindledger.ledger.v1`: the confidential ledger API.
pub mod ledger {
    /// Version 1 of the ledger API.
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("blindledger.ledger.v1");
    }
}

/// Encoded `FileDescriptorSet` of every BlindLedger proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("blindledger_descriptor");

pub use prost_types;

/// Every gRPC method of the services in an encoded `FileDescriptorSet`, as the paths
/// requests carry (`/package.Service/Method`).
pub fn method_paths(descriptor_set: &[u8]) -> Result<Vec<String>, prost::DecodeError> {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)?;
    Ok(set
        .file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| {
                    format!("/{}.{}/{}", file.package(), service.name(), method.name())
                })
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn method_paths_name_every_ledger_method() {
        let paths = super::method_paths(super::FILE_DESCRIPTOR_SET).unwrap();
        assert!(paths.contains(&"/blindledger.ledger.v1.LedgerService/Transfer".to_string()));
        assert!(paths.len() >= 11, "{paths:?}");
    }
}
