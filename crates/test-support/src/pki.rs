//! A throwaway certificate authority for TLS and mTLS tests: a CA, server certificates for
//! 127.0.0.1/localhost and client certificates naming a workload, written as PEM files
//! under a temporary directory.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};

/// A CA and the files of the certificates it issued.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    /// A new CA named `name`, its certificate written as `ca.pem`.
    pub fn new(name: &str) -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("ca.pem written");
        Pki { dir, ca, ca_key }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The CA certificate's file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Issues `name`'s certificate for `sans` with `usages`, writes `<name>.pem` and
    /// `<name>.key`, and returns both (PEM).
    pub fn issue(
        &self,
        name: &str,
        sans: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.extended_key_usages = usages;
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("certificate");
        let (cert, key) = (cert.pem(), key.serialize_pem());
        std::fs::write(self.path(&format!("{name}.pem")), &cert).expect("certificate written");
        std::fs::write(self.path(&format!("{name}.key")), &key).expect("key written");
        (cert.into_bytes(), key.into_bytes())
    }

    /// A server certificate for 127.0.0.1 and localhost; returns its files (cert, key).
    pub fn server(&self, name: &str) -> (PathBuf, PathBuf) {
        let sans = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().expect("DNS name")),
        ];
        self.issue(name, sans, vec![ExtendedKeyUsagePurpose::ServerAuth]);
        self.files(name)
    }

    /// A workload's certificate, as a service mesh issues them: for 127.0.0.1 and
    /// localhost, naming the workload `spiffe://blindledger.test/<name>`, good for serving
    /// and for calling other services (client authentication); returns its files.
    pub fn workload(&self, name: &str) -> (PathBuf, PathBuf) {
        let sans = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().expect("DNS name")),
            SanType::URI(
                format!("spiffe://blindledger.test/{name}")
                    .as_str()
                    .try_into()
                    .expect("URI"),
            ),
        ];
        let usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(name, sans, usages);
        self.files(name)
    }

    /// A client certificate naming the workload `uri` (a URI SAN, e.g. a SPIFFE id);
    /// returns its files (cert, key).
    pub fn client(&self, name: &str, uri: &str) -> (PathBuf, PathBuf) {
        let san = SanType::URI(uri.try_into().expect("URI"));
        self.issue(name, vec![san], vec![ExtendedKeyUsagePurpose::ClientAuth]);
        self.files(name)
    }

    /// The files (cert, key) of `name`'s certificate.
    pub fn files(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        )
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}
