//! The cluster's secrets, from the PKI in the state directory, as rendering needs them.

use std::path::Path;

use anyhow::Context;
use slipway_cluster::{Cluster, Node};
use slipway_pki::Pki;
use slipway_render::{SecretFile, Secrets};
use slipway_store::tracker::Tracker;
use std::sync::Arc;

/// The PKI (and, when machines are tracked, their report tokens), adapted to
/// [`Secrets`].
pub struct PkiSecrets(pub Pki, pub Option<Arc<Tracker>>);

impl Secrets for PkiSecrets {
    fn join_kubeconfig(&self, node: &Node) -> Result<String, String> {
        let cred = self
            .0
            .join_credential(&node.hostname)
            .map_err(|e| e.to_string())?;
        let not_after = cred
            .not_after
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tracing::info!(target: "audit", host = node.hostname, user = cred.user, serial = cred.serial, not_after, "join credential made");
        Ok(cred.kubeconfig)
    }

    fn report_tokens(&self, node: &Node) -> Option<(String, String)> {
        self.1.as_ref().map(|t| t.tokens(node.mac))
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
    if let Some(id) = pki.legacy_token_id() {
        tracing::warn!(
            token_id = id,
            file = %pki.dir().join(slipway_pki::LEGACY_TOKEN_FILE).display(),
            "an older slipway gave this cluster's nodes a shared bootstrap token that never expires; nodes now join with their own short-lived credentials: delete it from every cluster installed with it (`kubeadm token delete {id}`), then remove the file"
        );
    }
    Ok(PkiSecrets(pki, None))
}

/// A secret of `len` random bytes kept in `path` (0600), made once.
pub fn secret_file(path: &Path, len: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Ok(existing) = std::fs::read(path) {
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077)
            .unwrap_or(0);
        anyhow::ensure!(
            mode == 0,
            "{} is readable by others: chmod 600 it",
            path.display()
        );
        anyhow::ensure!(
            existing.len() == len,
            "{} is damaged ({} bytes, expected {len}): remove it to make a new one",
            path.display(),
            existing.len()
        );
        return Ok(existing);
    }
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes)
}

/// The operator token for the HTTP API's changes (`<state>/api-token`), as hex.
pub fn api_token(state_dir: &Path) -> anyhow::Result<String> {
    Ok(secret_file(&state_dir.join("api-token"), 16)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
