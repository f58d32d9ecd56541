//! Making keys and certificates: pure functions of their inputs and the time.
//!
//! Every key is ECDSA P-256 (kubeadm's `encryptionAlgorithm: ECDSA-P256`), written as
//! PKCS#8 (`-----BEGIN PRIVATE KEY-----`), which kubeadm, the API server, etcd and
//! the kubelet all read. That includes the service-account signing key `sa.key`
//! (tokens are then signed with ES256, which the API server accepts).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::PkiError;
use crate::plan::{CaKind, LeafSpec, San, Usage};

/// How long a CA certificate is valid: 10 years (3650 days), as kubeadm does.
pub const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);

/// How long a leaf certificate is valid: 1 year (365 days), as kubeadm does. Renew
/// with [`Pki::rotate_leaves`](crate::Pki::rotate_leaves).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far before "now" a certificate's validity starts, so that machines whose
/// clocks are a little behind accept it: 5 minutes, as kubeadm does.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A certificate and its private key, both PEM. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CertKey {
    /// The certificate, `-----BEGIN CERTIFICATE-----`.
    pub cert_pem: String,
    /// The private key, PKCS#8 `-----BEGIN PRIVATE KEY-----`.
    pub key_pem: String,
}

impl fmt::Debug for CertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertKey")
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

/// The service-account signing key pair (`sa.key`, `sa.pub`). Its `Debug` never
/// shows the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPairPem {
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The public key, `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo).
    pub pub_pem: String,
}

impl fmt::Debug for KeyPairPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPairPem")
            .field("key_pem", &format_args!("<redacted>"))
            .field("pub_pem", &self.pub_pem)
            .finish()
    }
}

/// A new self-signed CA of `kind`, valid from `now` (less [`BACKDATE`]) for
/// [`CA_VALIDITY`].
pub fn new_ca(kind: CaKind, now: SystemTime) -> Result<CertKey, PkiError> {
    let what = || format!("the {} CA", kind.base_name());
    let key = new_key(&what())?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, kind.common_name());
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    set_validity(&mut params, now, CA_VALIDITY)?;
    params.serial_number = Some(random_serial()?);
    let cert = params
        .self_signed(&key)
        .map_err(|e| generate_error(what(), e))?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A new leaf certificate for `spec` with a new key, signed by `ca`, valid from
/// `now` (less [`BACKDATE`]) for [`LEAF_VALIDITY`].
pub fn issue_leaf(spec: &LeafSpec, ca: &CertKey, now: SystemTime) -> Result<CertKey, PkiError> {
    sign(
        &Request {
            what: spec.id.to_string(),
            common_name: &spec.common_name,
            organizations: &spec.organizations,
            usage: spec.id.kind.usage(),
            sans: &spec.sans,
            validity: LEAF_VALIDITY,
        },
        ca,
        now,
    )
}

/// A new client certificate (extended key usage clientAuth only, no names) for
/// `common_name` in `organizations`, with a new key and a new random serial, signed
/// by `ca`, valid from `now` less [`BACKDATE`] until `now + validity`. `what` names
/// it in errors.
pub fn issue_client(
    what: &str,
    common_name: &str,
    organizations: &[String],
    ca: &CertKey,
    now: SystemTime,
    validity: Duration,
) -> Result<CertKey, PkiError> {
    sign(
        &Request {
            what: what.to_string(),
            common_name,
            organizations,
            usage: Usage::Client,
            sans: &[],
            validity,
        },
        ca,
        now,
    )
}

/// What a certificate to sign says, apart from its key.
struct Request<'a> {
    /// Names it in errors.
    what: String,
    common_name: &'a str,
    organizations: &'a [String],
    usage: Usage,
    sans: &'a [San],
    validity: Duration,
}

/// A new key and a certificate for it as `req` says, signed by `ca`.
fn sign(req: &Request<'_>, ca: &CertKey, now: SystemTime) -> Result<CertKey, PkiError> {
    let what = || req.what.clone();
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|e| generate_error(what(), e))?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(|e| generate_error(what(), e))?;
    let key = new_key(&what())?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // kubeadm (Go) writes O before CN.
    for org in req.organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn.push(DnType::CommonName, req.common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match req.usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::ServerAndClient => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.subject_alt_names = req
        .sans
        .iter()
        .map(|san| match san {
            San::Dns(name) => name
                .as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| generate_error(format!("{} (name `{name}`)", what()), e)),
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, _>>()?;
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, req.validity)?;
    params.serial_number = Some(random_serial()?);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| generate_error(what(), e))?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A new service-account signing key pair.
pub fn new_service_account_key() -> Result<KeyPairPem, PkiError> {
    let key = new_key("the service-account key")?;
    Ok(KeyPairPem {
        key_pem: key.serialize_pem(),
        pub_pem: key.public_key_pem(),
    })
}

/// The public key (`-----BEGIN PUBLIC KEY-----`) of a PKCS#8 private key; `Err`
/// says why the key cannot be read.
pub fn public_key_pem(key_pem: &str) -> Result<String, String> {
    KeyPair::from_pem(key_pem)
        .map(|k| k.public_key_pem())
        .map_err(|e| e.to_string())
}

fn new_key(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| generate_error(format!("a key for {what}"), e))
}

fn generate_error(what: String, e: impl fmt::Display) -> PkiError {
    PkiError::Generate {
        what,
        reason: e.to_string(),
    }
}

fn set_validity(
    params: &mut CertificateParams,
    now: SystemTime,
    validity: Duration,
) -> Result<(), PkiError> {
    let start = now.checked_sub(BACKDATE).unwrap_or(now);
    let end = now.checked_add(validity).unwrap_or(now);
    params.not_before = to_offset(start)?;
    params.not_after = to_offset(end)?;
    Ok(())
}

fn to_offset(t: SystemTime) -> Result<OffsetDateTime, PkiError> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| PkiError::Generate {
        what: "a certificate validity".into(),
        reason: format!("time out of range: {e}"),
    })
}

/// 16 random bytes, positive and with its first byte non-zero, as RFC 5280 wants.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    crate::secrets::fill_random(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{CertInfo, key_spki};
    use crate::plan::{LeafId, LeafKind};
    use std::net::{IpAddr, Ipv4Addr};

    fn spec() -> LeafSpec {
        LeafSpec {
            id: LeafId {
                node: Some("n1".into()),
                kind: LeafKind::Kubelet,
            },
            common_name: "system:node:n1".into(),
            organizations: vec!["system:nodes".into()],
            sans: vec![
                San::Dns("n1".into()),
                San::Dns("*.n1.example".into()),
                San::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            ],
        }
    }

    type R = Result<(), Box<dyn std::error::Error>>;

    fn secs_after(now: SystemTime, t: SystemTime) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(t.duration_since(now)?.as_secs())
    }

    #[test]
    fn a_leaf_reads_back_as_specified_and_is_signed_by_its_ca() -> R {
        let now = SystemTime::now();
        let ca = new_ca(CaKind::Cluster, now)?;
        let other = new_ca(CaKind::Cluster, now)?;
        let leaf = issue_leaf(&spec(), &ca, now)?;
        let ca_info = CertInfo::parse(&ca.cert_pem)?;
        let info = CertInfo::parse(&leaf.cert_pem)?;
        assert!(ca_info.is_ca && !info.is_ca);
        assert_eq!(ca_info.common_name, "kubernetes");
        assert_eq!(info.common_name, "system:node:n1");
        assert_eq!(info.organizations, ["system:nodes"]);
        assert_eq!(info.sans, spec().sans);
        assert!(info.signed_by(&ca_info));
        assert!(!info.signed_by(&CertInfo::parse(&other.cert_pem)?));
        assert_eq!(info.spki_der, key_spki(&leaf.key_pem)?);
        let leaf_secs = secs_after(now, info.not_after)?;
        assert!(
            leaf_secs.abs_diff(LEAF_VALIDITY.as_secs()) <= 1,
            "{leaf_secs}"
        );
        let ca_secs = secs_after(now, ca_info.not_after)?;
        assert!(ca_secs.abs_diff(CA_VALIDITY.as_secs()) <= 1, "{ca_secs}");
        Ok(())
    }

    #[test]
    fn debug_never_shows_a_private_key() -> R {
        let ca = new_ca(CaKind::Etcd, SystemTime::now())?;
        let shown = format!("{ca:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
        let sa = new_service_account_key()?;
        let shown = format!("{sa:?}");
        assert!(
            !shown.contains("PRIVATE") && shown.contains("PUBLIC KEY"),
            "{shown}"
        );
        assert_eq!(public_key_pem(&sa.key_pem)?, sa.pub_pem);
        Ok(())
    }
}
