//! Reading certificates and keys back: what slipway needs to know about a file it
//! finds on disk.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{KeyPair, PublicKeyData};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::plan::San;

/// What slipway reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name (CN), empty if it has none.
    pub common_name: String,
    /// The subject's organizations (O).
    pub organizations: Vec<String>,
    /// The start of its validity.
    pub not_before: SystemTime,
    /// The end of its validity.
    pub not_after: SystemTime,
    /// Its serial number, big-endian bytes as encoded.
    pub serial: Vec<u8>,
    /// Whether its extended key usage allows TLS client authentication.
    pub client_auth: bool,
    /// Whether its extended key usage allows TLS server authentication.
    pub server_auth: bool,
    /// Its DNS and IP subject alternative names, in certificate order.
    pub sans: Vec<San>,
    /// Its SubjectPublicKeyInfo, DER: what the discovery hash is computed over.
    pub spki_der: Vec<u8>,
    /// Whether its basic constraints say it is a CA.
    pub is_ca: bool,
    /// The whole certificate, DER.
    pub der: Vec<u8>,
}

impl CertInfo {
    /// Reads the first certificate of a PEM text; `Err` says why it cannot.
    pub fn parse(pem: &str) -> Result<CertInfo, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate ({e})"))?;
        if block.label != "CERTIFICATE" {
            return Err(format!("a PEM `{}`, not a CERTIFICATE", block.label));
        }
        let (_, cert) = X509Certificate::from_der(&block.contents)
            .map_err(|e| format!("not an X.509 certificate ({e})"))?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .find_map(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_string();
        let organizations = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let not_before = system_time(cert.validity().not_before.timestamp());
        let not_after = system_time(cert.validity().not_after.timestamp());
        let (client_auth, server_auth) = cert
            .extended_key_usage()
            .map_err(|e| format!("bad extendedKeyUsage ({e})"))?
            .map_or((false, false), |eku| {
                (eku.value.client_auth, eku.value.server_auth)
            });
        let mut sans = Vec::new();
        let san_ext = cert
            .subject_alternative_name()
            .map_err(|e| format!("bad subjectAltName ({e})"))?;
        for name in san_ext.iter().flat_map(|ext| &ext.value.general_names) {
            match name {
                GeneralName::DNSName(dns) => sans.push(San::Dns(dns.to_string())),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        sans.push(San::Ip(IpAddr::V4(Ipv4Addr::from(v4))));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        sans.push(San::Ip(IpAddr::V6(Ipv6Addr::from(v6))));
                    }
                }
                _ => {}
            }
        }
        Ok(CertInfo {
            common_name,
            organizations,
            not_before,
            not_after,
            serial: cert.raw_serial().to_vec(),
            client_auth,
            server_auth,
            sans,
            spki_der: cert.public_key().raw.to_vec(),
            is_ca: cert.is_ca(),
            der: block.contents.clone(),
        })
    }

    /// Whether `ca`'s key signed this certificate.
    pub fn signed_by(&self, ca: &CertInfo) -> bool {
        let (Ok((_, cert)), Ok((_, issuer))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&ca.der),
        ) else {
            return false;
        };
        cert.issuer() == issuer.subject()
            && cert.verify_signature(Some(issuer.public_key())).is_ok()
    }

    /// Whole days from `now` to the end of validity, negative once expired (rounded
    /// towards minus infinity: a certificate expiring in 5 hours has 0 days left).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        let secs = match self.not_after.duration_since(now) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
        };
        secs.div_euclid(24 * 3600)
    }
}

/// Seconds since the Unix epoch (negative before it) as a [`SystemTime`].
fn system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// The SubjectPublicKeyInfo (DER) of a PKCS#8 private key, to compare with a
/// certificate's; `Err` says why the key cannot be read.
pub fn key_spki(key_pem: &str) -> Result<Vec<u8>, String> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("not a PKCS#8 private key ({e})"))?;
    Ok(key.subject_public_key_info())
}

/// The SubjectPublicKeyInfo (DER) of a `-----BEGIN PUBLIC KEY-----` text.
pub fn public_key_spki(pub_pem: &str) -> Result<Vec<u8>, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pub_pem.as_bytes())
        .map_err(|e| format!("not a PEM public key ({e})"))?;
    if block.label != "PUBLIC KEY" {
        return Err(format!("a PEM `{}`, not a PUBLIC KEY", block.label));
    }
    Ok(block.contents)
}
