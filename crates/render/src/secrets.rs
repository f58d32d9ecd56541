//! The secrets rendering needs, behind a small trait the PKI implements.

use std::fmt;

use slipway_cluster::Node;

/// A file holding secret material that a node needs on disk.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// Absolute path on the node (e.g. `/etc/kubernetes/pki/ca.key`).
    pub path: String,
    /// PEM or other text contents.
    pub contents: String,
    /// Unix mode (0o600 for keys).
    pub mode: u32,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretFile({}, {:o}, <{} bytes>)",
            self.path,
            self.mode,
            self.contents.len()
        )
    }
}

/// What rendering asks of the cluster's secret store.
pub trait Secrets {
    /// The kubeadm bootstrap token (`abcdef.0123456789abcdef`).
    fn bootstrap_token(&self) -> &str;
    /// The discovery hash of the cluster CA (`sha256:...`).
    fn ca_cert_hash(&self) -> &str;
    /// The key that encrypts the control-plane certificates kubeadm shares (hex).
    fn certificate_key(&self) -> &str;
    /// The secret files `node` needs (CA keys for control-plane nodes, its certificates).
    fn node_files(&self, node: &Node) -> Vec<SecretFile>;
    /// The report tokens of `node`'s current install (install, ready), when slipway
    /// tracks machines: the install script and the installed system report with them.
    fn report_tokens(&self, _node: &Node) -> Option<(String, String)> {
        None
    }
}

/// Fixed, public, obviously fake secrets: for golden tests and `render --no-secrets`
/// previews. Never use them on a real cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExampleSecrets;

impl Secrets for ExampleSecrets {
    fn bootstrap_token(&self) -> &str {
        "abcdef.0123456789abcdef"
    }

    fn ca_cert_hash(&self) -> &str {
        "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    }

    fn certificate_key(&self) -> &str {
        "0000000000000000000000000000000000000000000000000000000000000000"
    }

    fn node_files(&self, node: &Node) -> Vec<SecretFile> {
        vec![SecretFile {
            path: "/etc/kubernetes/pki/ca.crt".into(),
            contents: format!(
                "-----BEGIN CERTIFICATE-----\nEXAMPLE for {}\n-----END CERTIFICATE-----\n",
                node.hostname
            ),
            mode: 0o644,
        }]
    }

    fn report_tokens(&self, _node: &Node) -> Option<(String, String)> {
        Some((
            "0000example0install0token0000000".into(),
            "0000example0ready0token000000000".into(),
        ))
    }
}
