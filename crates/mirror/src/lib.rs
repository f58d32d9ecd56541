//! What a cluster's asset mirror holds, where each file comes from, and how each is
//! verified — and the downloader `slipway mirror` runs.
//!
//! - [`plan()`] (no I/O): for a cluster, the files its nodes will ask slipway for — the
//!   OS's PXE kernel and initramfs, its disk image and `version.txt`, each with its
//!   detached OpenPGP signature, and the in-place update payload; the Kubernetes sysext
//!   image with its `SHA256SUMS`; iPXE's boot programs out of a Debian package pinned
//!   by SHA-256 ([`deb`]) —
//!   with their upstream URLs and where they land under `os.assets`
//!   (`<version>/<file>`, `extensions/<name>`), exactly where slipway serves them.
//! - [`verify`]: OpenPGP detached-signature verification against an armored keyring,
//!   accepting only keys whose primary fingerprint is trusted; SHA-256 sums.
//! - [`fetch`]: the downloads (HTTP Range resume of a `.part` file, N in parallel,
//!   atomic landing, a verified-manifest so a re-run fetches nothing twice).
//! - [`oci`]: the cluster's container images, pulled by digest into an OCI image
//!   layout under `<assets>/oci` that `slipway serve` answers the registry protocol from.
//!
//! Flatcar's image-signing key ships in this crate ([`FLATCAR_KEY`], fingerprint
//! [`FLATCAR_FINGERPRINT`]); `os.mirror.trusted_keys` replaces it.
#![deny(missing_docs)]

pub mod deb;
pub mod fetch;
pub mod oci;
pub mod plan;
pub mod verify;

pub use plan::{
    BOOT_DIR, Check, DEBIAN_IPXE, FLATCAR_FINGERPRINT, FLATCAR_KEY, FLATCAR_SYSEXT_URL,
    IPXE_PROGRAMS, Item, Member, Part, Plan, Trust, expected_files, plan, update_payload,
};
