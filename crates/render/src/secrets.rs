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
    /// The secret files `node` needs in `/etc/kubernetes/pki/` (CA keys for
    /// control-plane nodes only, its certificates).
    fn node_files(&self, node: &Node) -> Vec<SecretFile>;
    /// The join credential of `node`, a node that runs `kubeadm join`: a kubeconfig
    /// with the control-plane endpoint, the cluster CA and a client certificate of
    /// its own that expires shortly after the install window, made anew on every
    /// call (see `slipway_pki::join`). `Err` says why it cannot be made.
    fn join_kubeconfig(&self, node: &Node) -> Result<String, String>;
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

    fn join_kubeconfig(&self, node: &Node) -> Result<String, String> {
        use base64::Engine as _;
        let b64 = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
        let user = format!("system:bootstrap:slipway-{}", node.hostname);
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "example", "cluster": {
                "certificate-authority-data": b64("-----BEGIN CERTIFICATE-----\nEXAMPLE CA\n-----END CERTIFICATE-----\n".into()),
                "server": "https://192.0.2.1:6443",
            }}],
            "contexts": [{"name": format!("{user}@example"), "context": {"cluster": "example", "user": user}}],
            "current-context": format!("{user}@example"),
            "preferences": {},
            "users": [{"name": user, "user": {
                "client-certificate-data": b64(format!("-----BEGIN CERTIFICATE-----\nEXAMPLE join certificate of {}\n-----END CERTIFICATE-----\n", node.hostname)),
                "client-key-data": b64(format!("EXAMPLE join key of {}\n", node.hostname)),
            }}],
        });
        Ok(slipway_cluster::emit::to_yaml(&doc))
    }

    fn report_tokens(&self, _node: &Node) -> Option<(String, String)> {
        Some((
            "0000example0install0token0000000".into(),
            "0000example0ready0token000000000".into(),
        ))
    }
}
