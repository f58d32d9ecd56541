//! slipway's Omaha core: the update protocol Flatcar's `update_engine` speaks
//! ([`protocol`]) and the policy that decides which node updates and reboots when
//! ([`rollout`]). Pure: no sockets, no clock (time is passed in), no files; the caller
//! serves HTTP and persists the [`rollout::Rollout`].
//!
//! # The exchange
//!
//! `update_engine` POSTs XML to its update URL (`SERVER=` in `/etc/flatcar/update.conf`):
//!
//! 1. **Check**: `<app appid="{e96281a6-…}" version="3815.2.0" track="stable"
//!    machineid=".." bootid=".."><ping active="1"/><updatecheck/><event eventtype="3"
//!    eventresult="2" previousversion=""/></app>`. The server answers `<updatecheck
//!    status="noupdate"/>`, or `status="ok"` with a URL, a manifest naming the payload
//!    (`flatcar_production_update.gz`, its size and SHA-1) and a `postinstall` action
//!    carrying the payload's SHA-256, which is what `update_engine` verifies.
//! 2. **Progress**: one request per step, each with a single `<event>`: 13/1 download
//!    started, 14/1 download finished, 3/1 installed (needs a reboot). A failure is
//!    result 0 with an `errorcode`. Each gets `<event status="ok"/>`.
//! 3. **Reboot** (coordinated by the caller through [`rollout::Rollout::reboot_lock`]),
//!    then the next check reports the new `version`, with event 3/2 and
//!    `previousversion` set to the version it came from.
//!
//! ```
//! use slipway_omaha::protocol::{self, AppResponse, Offer, Response, UpdateCheck};
//! use slipway_omaha::rollout::{Decision, Policy, Role, Rollout};
//!
//! let body = br#"<?xml version="1.0" encoding="UTF-8"?>
//! <request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
//!  <os version="Chateau" platform="CoreOS" sp="3815.2.0_x86_64"></os>
//!  <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="3815.2.0" track="stable" bootid="{b1}" oem="" machineid="m1" lang="en-US" board="amd64-usr" delta_okay="false">
//!   <ping active="1"></ping>
//!   <updatecheck></updatecheck>
//!   <event eventtype="3" eventresult="2" previousversion=""></event>
//!  </app>
//! </request>"#;
//! let request = protocol::parse_request(body).expect("a real update_engine request");
//! let app = &request.apps[0];
//!
//! let policy = Policy { safe_mode: false, ..Policy::default() };
//! let mut rollout = Rollout::new("4081.2.0", policy, [("m1".to_string(), Role::Worker)]);
//! let now = 1_700_000_000;
//! let mut response = Response::new(now);
//! let node = app.machine_id.as_deref().unwrap_or_default();
//! for event in &app.events {
//!     if let Some(progress) = event.progress() {
//!         rollout.on_event(node, &progress, now);
//!     }
//! }
//! let check = match rollout.on_check(node, now, app.version.as_deref().unwrap_or_default()) {
//!     Decision::Update => UpdateCheck::Update(Offer {
//!         version: "4081.2.0".into(),
//!         codebase: "http://10.0.0.1:8080/flatcar/4081.2.0/".into(),
//!         package_name: "flatcar_production_update.gz".into(),
//!         size: 1234,
//!         sha1: [0; 20],
//!         sha256: [0; 32],
//!     }),
//!     Decision::NoUpdate(_) => UpdateCheck::NoUpdate,
//! };
//! response.apps.push(AppResponse::answer(app, check));
//! assert!(response.to_xml().contains(r#"<updatecheck status="ok">"#));
//! ```
//!
//! # The policy
//!
//! [`rollout`] documents it in full: at most `max_updating` nodes in flight, at most
//! `max_per_period` grants in any sliding window, an update timeout that halts the
//! rollout, control planes exclusive, an optional safe-mode canary, a failure that
//! halts, and a reboot lock under the same limits.
#![deny(missing_docs)]

pub mod protocol;
pub mod rollout;
