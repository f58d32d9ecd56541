//! Join credentials: what a node that runs `kubeadm join` (a worker, or another
//! control-plane node) authenticates with for its TLS bootstrap.
//!
//! Each joining node gets its own client certificate, signed by the cluster CA at the
//! moment slipway renders that node's installed configuration, with a new key pair
//! and a new serial every time:
//!
//! - subject CN `system:bootstrap:slipway-<hostname>` ([`join_user`]): the API
//!   server's x509 authenticator makes that the user name, so the audit log and every
//!   CSR's `spec.username` say which node's credential made a request; the
//!   `system:bootstrap:` prefix is the shape of the user names the bootstrap-token
//!   authenticator gives, so tools and readers see a bootstrap identity;
//! - subject O [`JOIN_GROUP`], `system:bootstrappers:kubeadm:default-node-token`:
//!   the group kubeadm's own RBAC already binds for joining nodes (create CSRs, have
//!   node client CSRs auto-approved, get nodes, read the `kubeadm-config` and
//!   `kubelet-config` ConfigMaps), so nothing needs to be added to the cluster;
//! - extended key usage clientAuth only, no names;
//! - valid from now less [`BACKDATE`](crate::issue::BACKDATE) (clock skew) until now
//!   plus the install window (`os.install_timeout`) plus [`JOIN_GRACE`]
//!   ([`join_validity`]).
//!
//! The node receives it as a kubeconfig ([`JoinCredential::kubeconfig`]) with the
//! control-plane endpoint as server and the cluster CA, the certificate and its key
//! embedded. kubeadm takes the credentials of a discovery kubeconfig for the TLS
//! bootstrap (`discovery.file.kubeConfigPath`), and the embedded CA makes a CA hash
//! unnecessary. Nothing is stored: a credential is made, handed out and forgotten,
//! and it expires by itself. Kubernetes does not check revocation of client
//! certificates, so the short validity is what bounds a leaked one.

use std::fmt;
use std::time::{Duration, SystemTime};

use slipway_cluster::LeaseTime;

use crate::PkiError;
use crate::inspect::CertInfo;
use crate::issue::{self, CertKey};
use crate::kubeconfig;

/// The group of every join credential: the group kubeadm binds, in the cluster it
/// creates, to `system:node-bootstrapper` (create CSRs), to
/// `system:certificates.k8s.io:certificatesigningrequests:nodeclient` (CSR
/// auto-approval), to `kubeadm:get-nodes`, and to the Roles reading the
/// `kubeadm-config` and `kubelet-config` ConfigMaps.
pub const JOIN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// The start of every join credential's user name (its certificate's CN); the
/// hostname follows.
pub const JOIN_USER_PREFIX: &str = "system:bootstrap:slipway-";

/// How long a join credential stays valid after the install window: time for the
/// installed system to boot, fetch the Kubernetes binaries and run `kubeadm join`.
pub const JOIN_GRACE: Duration = Duration::from_secs(3600);

/// The install window taken when `os.install_timeout` is `infinite`: a credential
/// must expire, so 24 hours, the lifetime kubeadm gives its own bootstrap tokens.
pub const UNBOUNDED_INSTALL_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The user name of `hostname`'s join credential: `system:bootstrap:slipway-<hostname>`.
pub fn join_user(hostname: &str) -> String {
    format!("{JOIN_USER_PREFIX}{hostname}")
}

/// How long a join credential is valid, counted from when it is made: the install
/// window (`install_timeout`, or [`UNBOUNDED_INSTALL_WINDOW`] when it is infinite)
/// plus [`JOIN_GRACE`].
pub fn join_validity(install_timeout: LeaseTime) -> Duration {
    let window = match install_timeout {
        LeaseTime::Seconds(s) => Duration::from_secs(u64::from(s)),
        LeaseTime::Infinite => UNBOUNDED_INSTALL_WINDOW,
    };
    window.saturating_add(JOIN_GRACE)
}

/// A freshly made join credential. Its `Debug` shows neither the key nor the
/// kubeconfig.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinCredential {
    /// The user name it authenticates as ([`join_user`]).
    pub user: String,
    /// Its certificate's serial number, lowercase hex: what to look for in logs.
    pub serial: String,
    /// The end of its validity.
    pub not_after: SystemTime,
    /// The certificate and its private key.
    pub cert: CertKey,
    /// The kubeconfig the node gets: server, cluster CA, certificate and key embedded.
    pub kubeconfig: String,
}

impl fmt::Debug for JoinCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinCredential")
            .field("user", &self.user)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .field("kubeconfig", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Makes a join credential for node `hostname` of cluster `cluster_name`, whose API
/// server clients reach at `server` (`https://host:port`): a new key and a client
/// certificate signed by the cluster CA `ca`, valid from `now` less
/// [`BACKDATE`](crate::issue::BACKDATE) until `now + validity`, in a kubeconfig.
pub fn mint(
    hostname: &str,
    cluster_name: &str,
    server: &str,
    ca: &CertKey,
    now: SystemTime,
    validity: Duration,
) -> Result<JoinCredential, PkiError> {
    let user = join_user(hostname);
    let what = format!("the join credential of {hostname}");
    let cert = issue::issue_client(&what, &user, &[JOIN_GROUP.to_string()], ca, now, validity)?;
    let info = CertInfo::parse(&cert.cert_pem).map_err(|reason| PkiError::Generate {
        what: what.clone(),
        reason,
    })?;
    let kubeconfig =
        kubeconfig::client_kubeconfig(cluster_name, server, &ca.cert_pem, &user, &cert);
    Ok(JoinCredential {
        user,
        serial: crate::secrets::hex(&info.serial),
        not_after: info.not_after,
        cert,
        kubeconfig,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{BACKDATE, new_ca};
    use crate::plan::CaKind;

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn validity_is_the_install_window_and_an_hour() {
        assert_eq!(
            join_validity(LeaseTime::Seconds(1800)),
            Duration::from_secs(1800 + 3600)
        );
        assert_eq!(
            join_validity(LeaseTime::Infinite),
            Duration::from_secs(25 * 3600)
        );
    }

    #[test]
    fn a_credential_is_a_client_certificate_of_the_bootstrap_group() -> R {
        let now = SystemTime::now();
        let ca = new_ca(CaKind::Cluster, now)?;
        let cred = mint(
            "w1",
            "lab",
            "https://10.0.0.1:6443",
            &ca,
            now,
            Duration::from_secs(5400),
        )?;
        let info = CertInfo::parse(&cred.cert.cert_pem)?;
        assert_eq!(info.common_name, "system:bootstrap:slipway-w1");
        assert_eq!(cred.user, info.common_name);
        assert_eq!(
            info.organizations,
            ["system:bootstrappers:kubeadm:default-node-token"]
        );
        assert!(info.client_auth && !info.server_auth && !info.is_ca);
        assert!(info.sans.is_empty());
        assert!(info.signed_by(&CertInfo::parse(&ca.cert_pem)?));
        let start = now.duration_since(info.not_before)?.as_secs();
        assert!(start.abs_diff(BACKDATE.as_secs()) <= 1, "{start}");
        let end = info.not_after.duration_since(now)?.as_secs();
        assert!(end.abs_diff(5400) <= 1, "{end}");
        assert_eq!(cred.not_after, info.not_after);
        let shown = format!("{cred:?}");
        assert!(
            !shown.contains("PRIVATE") && !shown.contains("apiVersion"),
            "{shown}"
        );
        Ok(())
    }
}
