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

/// A gRPC method of a service, as a descriptor set declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodInfo {
    /// The path requests carry: `/package.Service/Method`.
    pub path: String,
    /// Whether the client sends a stream.
    pub client_streaming: bool,
    /// Whether the server answers with a stream.
    pub server_streaming: bool,
}

/// Every gRPC method of the services in an encoded `FileDescriptorSet`.
pub fn methods(descriptor_set: &[u8]) -> Result<Vec<MethodInfo>, prost::DecodeError> {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)?;
    Ok(set
        .file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| MethodInfo {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                })
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn methods_name_every_ledger_method_and_its_streaming() {
        let methods = super::methods(super::FILE_DESCRIPTOR_SET).unwrap();
        let find = |name: &str| {
            let path = format!("/blindledger.ledger.v1.LedgerService/{name}");
            methods.iter().find(|m| m.path == path).cloned()
        };
        let transfer = find("Transfer").expect("Transfer");
        assert!(!transfer.client_streaming && !transfer.server_streaming);
        let watch = find("WatchJob").expect("WatchJob");
        assert!(!watch.client_streaming && watch.server_streaming);
        let upload = find("RegisterTenantKeys").expect("RegisterTenantKeys");
        assert!(upload.client_streaming && !upload.server_streaming);
        assert!(methods.len() >= 11, "{methods:?}");
    }
}
