//! The cluster's secrets, from the PKI in the state directory, as rendering needs them.

use std::path::Path;

use anyhow::Context;
use slipway_cluster::{Cluster, Node};
use slipway_pki::Pki;
use slipway_render::{SecretFile, Secrets};

/// The PKI, adapted to [`Secrets`].
pub struct PkiSecrets(pub Pki);

impl Secrets for PkiSecrets {
    fn bootstrap_token(&self) -> &str {
        self.0.bootstrap_token()
    }

    fn ca_cert_hash(&self) -> &str {
        self.0.ca_cert_hash()
    }

    fn certificate_key(&self) -> &str {
        self.0.certificate_key()
    }

    fn node_files(&self, node: &Node) -> Vec<SecretFile> {
        self.0
            .node_files(&node.hostname)
            .into_iter()
            .map(|f| SecretFile {
                path: format!("/etc/kubernetes/pki/{}", f.path),
                contents: f.contents,
                mode: f.mode,
            })
            .collect()
    }
}

/// Loads the PKI of `cluster` from `state_dir`, creating what is missing (once).
pub fn open(state_dir: &Path, cluster: &Cluster) -> anyhow::Result<PkiSecrets> {
    let pki = Pki::load_or_create(state_dir, cluster)
        .with_context(|| format!("PKI in {}", state_dir.display()))?;
    for path in pki.written() {
        tracing::info!(path = %path.display(), "PKI file created");
    }
    Ok(PkiSecrets(pki))
}
