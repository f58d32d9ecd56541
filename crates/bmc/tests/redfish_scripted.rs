//! The Redfish driver against a scripted peer (plain HTTP on 127.0.0.1): what
//! sushy-tools cannot show — session login and logout, ETag / If-Match,
//! PowerCycle and ActionInfo, the exact requests sent — and hostile or broken
//! replies, unreachable and silent BMCs.
#![allow(clippy::unwrap_used)]

#[path = "support/redfish/peer.rs"]
mod peer;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peer::{Peer, Req, Resp};
use serde_json::{Value, json};
use slipway_bmc::redfish::{self, Auth, Config, Tls};
use slipway_bmc::{Bmc, BootDevice, BootOverride, Error, PowerAction, PowerState, Secret};

const USER: &str = "operator";
const PASSWORD: &str = "s3cret-Horse-battery";
const SYSTEM: &str = "/redfish/v1/Systems/1";
const RESET: &str = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset";
const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";

fn config(peer: &Peer) -> Config {
    let mut cfg = Config::new(
        "127.0.0.1",
        peer.port,
        USER,
        Secret::new(PASSWORD),
        Tls::Insecure,
    );
    cfg.scheme_http = true;
    cfg.timeout = Duration::from_secs(5);
    cfg.power_off_wait = Duration::from_secs(5);
    cfg
}

fn expect_err<T>(r: slipway_bmc::Result<T>) -> Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn root() -> Value {
    json!({
        "@odata.id": "/redfish/v1/",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
        "Links": {"Sessions": {"@odata.id": SESSIONS}}
    })
}

fn systems() -> Value {
    json!({"Members": [{"@odata.id": SYSTEM}], "Members@odata.count": 1})
}

fn system(power: &str, reset: Value) -> Value {
    json!({
        "@odata.id": SYSTEM, "Id": "1", "PowerState": power,
        "Manufacturer": "Contoso", "Model": "Box 9000",
        "Boot": {"BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled"},
        "Actions": {"#ComputerSystem.Reset": reset}
    })
}

/// The standard resources, or None for the rest.
fn standard(req: &Req, sys: impl FnOnce() -> Value) -> Option<Resp> {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/redfish/v1/") => Some(Resp::json(root())),
        ("GET", "/redfish/v1/Systems") => Some(Resp::json(systems())),
        ("GET", SYSTEM) => Some(Resp::json(sys())),
        _ => None,
    }
}

fn basic_header() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

#[test]
fn session_login_sends_the_token_and_drop_deletes_the_session() {
    let peer = Peer::start(|req| {
        if req.method == "POST" && req.path == SESSIONS {
            let b = req.json();
            return if b["UserName"] == USER && b["Password"] == PASSWORD {
                Resp::status_json(201, json!({"Id": "77"}))
                    .with("X-Auth-Token", "tok-77")
                    // An absolute URL, as some BMCs give.
                    .with("Location", &format!("https://127.0.0.1{SESSIONS}/77"))
            } else {
                Resp::status_json(401, json!({"error": {"message": "bad credentials"}}))
            };
        }
        if req.path != "/redfish/v1/" && req.header("X-Auth-Token") != Some("tok-77") {
            return Resp::empty(401);
        }
        if req.method == "DELETE" {
            return Resp::empty(204);
        }
        standard(req, || system("On", json!({"target": RESET}))).unwrap_or(Resp::empty(404))
    });
    let mut cfg = config(&peer);
    cfg.auth = Auth::Session;
    let mut bmc = redfish::connect(&cfg).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
    drop(bmc);

    assert_eq!(
        peer.lines(),
        [
            "GET /redfish/v1/".to_string(),
            format!("POST {SESSIONS}"),
            "GET /redfish/v1/Systems".to_string(),
            format!("GET {SYSTEM}"),
            format!("GET {SYSTEM}"),
            format!("DELETE {SESSIONS}/77"),
        ]
    );
    for req in peer.requests() {
        assert_eq!(req.header("Authorization"), None, "{}", req.line());
        if req.method != "POST" {
            assert!(!String::from_utf8_lossy(&req.body).contains(PASSWORD));
        }
    }
}

#[test]
fn session_login_at_the_standard_place_when_even_the_root_needs_auth() {
    let peer = Peer::start(|req| {
        if req.method == "POST" && req.path == SESSIONS {
            return Resp::empty(201)
                .with("X-Auth-Token", "tok-1")
                .with("Location", &format!("{SESSIONS}/1"));
        }
        if req.header("X-Auth-Token") != Some("tok-1") {
            return Resp::empty(401);
        }
        if req.method == "DELETE" {
            return Resp::empty(204);
        }
        standard(req, || system("Off", json!({}))).unwrap_or(Resp::empty(404))
    });
    let mut cfg = config(&peer);
    cfg.auth = Auth::Session;
    let mut bmc = redfish::connect(&cfg).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    drop(bmc);
    let lines = peer.lines();
    assert_eq!(
        lines[..3],
        [
            "GET /redfish/v1/".to_string(),
            format!("POST {SESSIONS}"),
            "GET /redfish/v1/".to_string()
        ]
    );
    assert_eq!(lines.last().unwrap(), &format!("DELETE {SESSIONS}/1"));
}

#[test]
fn session_expired_by_the_bmc_is_made_again_once() {
    let logins = Arc::new(AtomicU32::new(0));
    let expire = Arc::new(AtomicBool::new(false));
    let peer = {
        let (logins, expire) = (logins.clone(), expire.clone());
        Peer::start(move |req| {
            if req.method == "POST" && req.path == SESSIONS {
                let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                expire.store(false, Ordering::SeqCst);
                return Resp::empty(201)
                    .with("X-Auth-Token", &format!("tok-{n}"))
                    .with("Location", &format!("{SESSIONS}/{n}"));
            }
            let current = format!("tok-{}", logins.load(Ordering::SeqCst));
            if req.path != "/redfish/v1/"
                && (expire.load(Ordering::SeqCst) || req.header("X-Auth-Token") != Some(&current))
            {
                return Resp::status_json(401, json!({"error": {"message": "session expired"}}));
            }
            if req.method == "DELETE" {
                return Resp::empty(204);
            }
            standard(req, || system("Off", json!({}))).unwrap_or(Resp::empty(404))
        })
    };
    let mut cfg = config(&peer);
    cfg.auth = Auth::Session;
    let mut bmc = redfish::connect(&cfg).unwrap();
    expire.store(true, Ordering::SeqCst);
    assert_eq!(bmc.power_state().unwrap(), PowerState::Off);
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    bmc.logout();
    assert_eq!(
        peer.lines().last().unwrap(),
        &format!("DELETE {SESSIONS}/2")
    );
}

#[test]
fn session_login_refused_is_an_auth_error_without_the_password() {
    let peer = Peer::start(|req| {
        if req.method == "POST" && req.path == SESSIONS {
            // A careless BMC that echoes what it got.
            let echoed = format!("login failed for {}", String::from_utf8_lossy(&req.body));
            return Resp::status_json(401, json!({"error": {"message": echoed}}));
        }
        standard(req, || system("On", json!({}))).unwrap_or(Resp::empty(404))
    });
    let mut cfg = config(&peer);
    cfg.auth = Auth::Session;
    let err = expect_err(redfish::connect(&cfg));
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
    assert!(shown.contains(USER), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[test]
fn basic_auth_header_is_on_every_request() {
    let peer = Peer::start(|req| {
        if req.header("Authorization") != Some(&basic_header()) {
            return Resp::empty(401);
        }
        standard(req, || system("On", json!({}))).unwrap_or(Resp::empty(404))
    });
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    assert_eq!(bmc.power_state().unwrap(), PowerState::On);
    for req in peer.requests() {
        assert_eq!(req.header("OData-Version"), Some("4.0"));
        assert_eq!(req.header("X-Auth-Token"), None);
    }
}

#[test]
fn boot_patch_sends_if_match_and_retries_once_after_412() {
    let etag = Arc::new(AtomicU32::new(1));
    let peer = {
        let etag = etag.clone();
        Peer::start(move |req| {
            let tag = format!("W/\"{}\"", etag.load(Ordering::SeqCst));
            if req.method == "PATCH" {
                if req.header("If-Match") != Some(&tag) {
                    return Resp::status_json(412, json!({"error": {"message": "stale"}}));
                }
                if tag == "W/\"1\"" {
                    // Changed by someone else between the GET and the PATCH.
                    etag.store(2, Ordering::SeqCst);
                    return Resp::status_json(412, json!({"error": {"message": "stale"}}));
                }
                return Resp::empty(204);
            }
            standard(req, || {
                let mut s = system("On", json!({}));
                s["@odata.etag"] = json!(tag);
                s
            })
            .unwrap_or(Resp::empty(404))
        })
    };
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    bmc.set_boot(BootOverride {
        device: BootDevice::Pxe,
        once: true,
        mode: None,
    })
    .unwrap();
    let patches: Vec<Req> = peer
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[0].header("If-Match"), Some("W/\"1\""));
    assert_eq!(patches[1].header("If-Match"), Some("W/\"2\""));
    assert_eq!(
        patches[1].json(),
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}})
    );
    assert_eq!(patches[1].header("Content-Type"), Some("application/json"));
}

fn recording_power_peer(reset: Value, action_info: Option<Value>) -> (Peer, Arc<Mutex<String>>) {
    let power = Arc::new(Mutex::new("On".to_string()));
    let peer = {
        let power = power.clone();
        Peer::start(move |req| {
            if req.method == "POST" {
                let kind = req.json()["ResetType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                *power.lock().unwrap() = match kind.as_str() {
                    "ForceOff" | "GracefulShutdown" => "Off".into(),
                    _ => "On".into(),
                };
                return Resp::empty(204);
            }
            if req.path == "/redfish/v1/Systems/1/ResetActionInfo"
                && let Some(info) = &action_info
            {
                return Resp::json(info.clone());
            }
            let state = power.lock().unwrap().clone();
            standard(req, || system(&state, reset.clone())).unwrap_or(Resp::empty(404))
        })
    };
    (peer, power)
}

fn posted(peer: &Peer) -> Vec<(String, String)> {
    peer.requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            (
                r.path.clone(),
                r.json()["ResetType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn power_cycle_is_one_powercycle_to_the_advertised_target_when_allowed() {
    let target = "/redfish/v1/Systems/1/Actions/Oem.CustomReset";
    let (peer, _) = recording_power_peer(
        json!({"target": target,
               "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "PowerCycle", "ForceRestart"]}),
        None,
    );
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    bmc.power(PowerAction::Cycle).unwrap();
    bmc.power(PowerAction::Reset).unwrap();
    assert_eq!(
        posted(&peer),
        [
            (target.to_string(), "PowerCycle".to_string()),
            (target.to_string(), "ForceRestart".to_string())
        ]
    );
}

#[test]
fn action_info_decides_the_reset_types() {
    let (peer, power) = recording_power_peer(
        json!({"target": RESET, "@Redfish.ActionInfo": "/redfish/v1/Systems/1/ResetActionInfo"}),
        Some(json!({"Parameters": [{"Name": "ResetType", "AllowableValues": ["On", "ForceOff"]}]})),
    );
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    bmc.power(PowerAction::Cycle).unwrap();
    assert_eq!(
        posted(&peer),
        [
            (RESET.to_string(), "ForceOff".to_string()),
            (RESET.to_string(), "On".to_string())
        ]
    );
    assert_eq!(*power.lock().unwrap(), "On");

    let err = expect_err(bmc.power(PowerAction::Soft));
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("GracefulShutdown") && m.contains("On, ForceOff")),
        "{err:?}"
    );
    assert_eq!(
        posted(&peer).len(),
        2,
        "nothing sent for an unsupported action"
    );
}

#[test]
fn power_cycle_fallback_gives_up_when_the_system_never_turns_off() {
    let peer = Peer::start(|req| {
        if req.method == "POST" {
            return Resp::empty(204);
        }
        standard(req, || {
            system(
                "On",
                json!({"ResetType@Redfish.AllowableValues": ["On", "ForceOff"]}),
            )
        })
        .unwrap_or(Resp::empty(404))
    });
    let mut cfg = config(&peer);
    cfg.power_off_wait = Duration::from_secs(1);
    let mut bmc = redfish::connect(&cfg).unwrap();
    let started = Instant::now();
    let err = expect_err(bmc.power(PowerAction::Cycle));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(posted(&peer).len(), 1, "no On after a failed off");
}

#[test]
fn refusal_carries_the_redfish_extended_info_message() {
    let peer = Peer::start(|req| {
        if req.method == "POST" {
            return Resp::status_json(
                400,
                json!({"error": {"code": "Base.1.0.GeneralError", "message": "A general error has occurred.",
                    "@Message.ExtendedInfo": [{"MessageId": "Base.1.8.ActionParameterNotSupported",
                        "Message": "The parameter ResetType for the action ComputerSystem.Reset is not supported on the target resource."}]}}),
            );
        }
        standard(req, || system("On", json!({}))).unwrap_or(Resp::empty(404))
    });
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    let err = expect_err(bmc.power(PowerAction::Off));
    let Error::Refused { what, detail } = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert_eq!(what, &format!("POST {RESET}"));
    assert!(detail.starts_with("HTTP 400 Bad Request: "), "{detail}");
    assert!(
        detail.contains(
            "The parameter ResetType for the action ComputerSystem.Reset is not supported"
        ),
        "{detail}"
    );
}

#[test]
fn an_echoed_password_is_cut_from_errors() {
    let peer = Peer::start(|req| {
        if req.method == "PATCH" {
            let echoed = format!("user {USER} with password {PASSWORD} may not do that");
            return Resp::status_json(403, json!({"error": {"message": echoed}}));
        }
        standard(req, || system("On", json!({}))).unwrap_or(Resp::empty(404))
    });
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    let err = expect_err(bmc.set_boot(BootOverride {
        device: BootDevice::Disk,
        once: false,
        mode: None,
    }));
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[test]
fn oversized_reply_is_refused_without_reading_it_all() {
    let peer = Peer::start(|req| {
        if req.path == SYSTEM {
            let mut body = b"{\"PowerState\": \"On\", \"Pad\": \"".to_vec();
            body.resize(5 << 20, b'x');
            body.extend_from_slice(b"\"}");
            return Resp {
                status: 200,
                headers: vec![],
                body,
            };
        }
        standard(req, || json!({})).unwrap_or(Resp::empty(404))
    });
    let err = expect_err(redfish::connect(&config(&peer)));
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("larger than 4 MiB")),
        "{err:?}"
    );
}

#[test]
fn broken_replies_are_protocol_errors() {
    let mode = Arc::new(AtomicU32::new(0));
    let peer = {
        let mode = mode.clone();
        Peer::start(move |req| {
            if req.path == SYSTEM {
                return match mode.load(Ordering::SeqCst) {
                    0 => Resp::json(system("On", json!({}))),
                    1 => Resp {
                        status: 200,
                        headers: vec![],
                        body: b"<html>not json".to_vec(),
                    },
                    2 => Resp::json(json!({"PowerState": "Sideways"})),
                    3 => Resp::json(json!({"PowerState": ["On"]})),
                    _ => Resp::empty(302).with("Location", "https://elsewhere.example/"),
                };
            }
            standard(req, || json!({})).unwrap_or(Resp::empty(404))
        })
    };
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    mode.store(1, Ordering::SeqCst);
    assert!(matches!(bmc.power_state(), Err(Error::Protocol(m)) if m.contains("not JSON")));
    mode.store(2, Ordering::SeqCst);
    assert!(matches!(bmc.power_state(), Err(Error::Protocol(m)) if m.contains("Sideways")));
    mode.store(3, Ordering::SeqCst);
    assert!(matches!(bmc.power_state(), Err(Error::Protocol(_))));
    // Whatever info() makes of it, it returns rather than panics.
    let _ = bmc.info();
    mode.store(4, Ordering::SeqCst);
    let err = expect_err(bmc.power_state());
    assert!(
        matches!(&err, Error::Refused { detail, .. } if detail.contains("302") && detail.contains("not followed")),
        "{err:?}"
    );
    assert!(
        !peer.lines().iter().any(|l| l.contains("elsewhere")),
        "redirect not followed"
    );
}

#[test]
fn hostile_member_links_are_skipped() {
    let peer = Peer::start(|req| {
        if req.path == "/redfish/v1/Systems" {
            return Resp::json(json!({"Members": [
                {"@odata.id": "//evil.example/redfish/v1/Systems/1"},
                {"@odata.id": "/redfish/v1/Systems/1\r\nX-Injected: 1"},
                {"@odata.id": 42},
                "junk"
            ]}));
        }
        standard(req, || json!({})).unwrap_or(Resp::empty(404))
    });
    let err = expect_err(redfish::connect(&config(&peer)));
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("no ComputerSystem")),
        "{err:?}"
    );
}

#[test]
fn info_prefers_the_manager_and_fills_in_from_the_system() {
    let peer = Peer::start(|req| {
        if req.path == "/redfish/v1/Managers/bmc" {
            return Resp::json(json!({"Model": "iBMC 3", "FirmwareVersion": "2.7.1"}));
        }
        standard(req, || {
            let mut s = system("On", json!({}));
            s["Links"] = json!({"ManagedBy": [{"@odata.id": "/redfish/v1/Managers/bmc"}]});
            s
        })
        .unwrap_or(Resp::empty(404))
    });
    let mut bmc = redfish::connect(&config(&peer)).unwrap();
    let info = bmc.info().unwrap();
    assert_eq!(info.manufacturer, "Contoso");
    assert_eq!(info.model, "iBMC 3");
    assert_eq!(info.firmware, "2.7.1");
}

#[test]
fn closed_port_is_an_io_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = Config::new(
        "127.0.0.1",
        port,
        USER,
        Secret::new(PASSWORD),
        Tls::Insecure,
    );
    cfg.timeout = Duration::from_secs(2);
    let err = expect_err(redfish::connect(&cfg));
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn silent_bmc_times_out_in_bounded_time() {
    // Accepts TCP connections (the kernel's backlog) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for tls in [true, false] {
        let mut cfg = Config::new(
            "127.0.0.1",
            port,
            USER,
            Secret::new(PASSWORD),
            Tls::Insecure,
        );
        cfg.scheme_http = !tls;
        cfg.timeout = Duration::from_millis(700);
        let started = Instant::now();
        let err = expect_err(redfish::connect(&cfg));
        assert!(matches!(err, Error::Timeout { .. }), "tls {tls}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    drop(listener);
}
