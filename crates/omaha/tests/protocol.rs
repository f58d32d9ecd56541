//! The Omaha protocol: real request shapes parse, hostile input is refused without a panic,
//! and responses carry exactly the attributes update_engine reads.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use quick_xml::events::Event as XmlEvent;
use slipway_omaha::protocol::{
    self, AppResponse, EventResult, EventType, FLATCAR_APP_ID, MAX_APPS, MAX_BODY, MAX_EVENTS,
    Offer, ParseError, Progress, Response, UpdateCheck,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn progress_of(name: &str) -> Vec<Option<Progress>> {
    let request = protocol::parse_request(&fixture(name)).unwrap();
    assert_eq!(request.apps.len(), 1, "{name}");
    request.apps[0]
        .events
        .iter()
        .map(|e| e.progress())
        .collect()
}

#[test]
fn a_scheduled_check_parses_with_every_field() {
    let request = protocol::parse_request(&fixture("check.xml")).unwrap();
    assert_eq!(request.protocol, "3.0");
    assert_eq!(
        request.updater_version.as_deref(),
        Some("update_engine-0.4.10")
    );
    assert_eq!(request.install_source.as_deref(), Some("scheduler"));
    let os = request.os.as_ref().unwrap();
    assert_eq!(os.platform.as_deref(), Some("CoreOS"));
    assert_eq!(os.sp.as_deref(), Some("3815.2.0_x86_64"));
    let app = &request.apps[0];
    assert_eq!(app.appid, FLATCAR_APP_ID);
    assert_eq!(app.version.as_deref(), Some("3815.2.0"));
    assert_eq!(app.track.as_deref(), Some("stable"));
    assert_eq!(
        app.machine_id.as_deref(),
        Some("8a3c2f1e9b7d4c6a8e5f1b2d3c4a5b6c")
    );
    assert_eq!(
        app.boot_id.as_deref(),
        Some("{4f7fa7ff-4a47-4a2d-9a4d-3c8e2b8f0a11}")
    );
    assert_eq!(app.oem.as_deref(), Some("qemu"));
    assert_eq!(app.oem_version.as_deref(), Some("0.0.1"));
    assert_eq!(app.aleph_version.as_deref(), Some("3510.2.0"));
    assert_eq!(app.board.as_deref(), Some("amd64-usr"));
    assert_eq!(app.machine_alias.as_deref(), Some(""));
    assert!(!app.delta_okay);
    assert!(app.ping);
    assert!(app.updatecheck);
    assert_eq!(app.events.len(), 1);
    let event = &app.events[0];
    assert_eq!(event.event_type, EventType::UPDATE_COMPLETE);
    assert_eq!(event.result, EventResult::SUCCESS_REBOOT);
    assert_eq!(event.previous_version.as_deref(), Some(""));
    assert_eq!(event.error_code, None);
    // The 3/2 event every ordinary check carries says nothing about progress.
    assert_eq!(event.progress(), None);
}

#[test]
fn events_map_to_progress() {
    assert_eq!(
        progress_of("download-started.xml"),
        [Some(Progress::Downloading)]
    );
    assert_eq!(
        progress_of("download-finished.xml"),
        [Some(Progress::Downloaded)]
    );
    assert_eq!(progress_of("installed.xml"), [Some(Progress::Installed)]);
    assert_eq!(
        progress_of("nebraska-installed.xml"),
        [Some(Progress::Installed)]
    );
    assert_eq!(
        progress_of("check-after-reboot.xml"),
        [Some(Progress::Rebooted {
            previous_version: "3815.2.0".into()
        })]
    );
    assert_eq!(
        progress_of("error.xml"),
        [Some(Progress::Error {
            event_type: EventType::UPDATE_COMPLETE,
            code: Some(12)
        })]
    );
    assert_eq!(
        progress_of("rollback.xml"),
        [Some(Progress::Error {
            event_type: EventType::UPDATE_COMPLETE,
            code: Some(47)
        })]
    );
    // Event-only requests carry neither a ping nor an updatecheck.
    let request = protocol::parse_request(&fixture("download-started.xml")).unwrap();
    assert!(!request.apps[0].ping && !request.apps[0].updatecheck);
}

#[test]
fn an_app_sums_up_its_progress() {
    let app = |name: &str| {
        protocol::parse_request(&fixture(name))
            .unwrap()
            .apps
            .remove(0)
    };
    assert_eq!(app("check.xml").progress(), Some(Progress::Checking));
    assert_eq!(app("installed.xml").progress(), Some(Progress::Installed));
    assert!(matches!(
        app("rollback.xml").progress(),
        Some(Progress::Error { code: Some(47), .. })
    ));
    let body = br#"<request protocol="3.0"><app appid="a"><ping/></app><app appid="b"><event eventtype="3" eventresult="0"/><event eventtype="13" eventresult="1"/></app></request>"#;
    let request = protocol::parse_request(body).unwrap();
    assert_eq!(
        request.apps[0].progress(),
        None,
        "a ping alone says nothing"
    );
    assert!(
        matches!(
            request.apps[1].progress(),
            Some(Progress::Error { code: None, .. })
        ),
        "an error wins over a later event"
    );
}

#[test]
fn a_first_install_reports_previous_version_zero_which_is_no_progress() {
    let body = br#"<request protocol="3.0"><app appid="a" version="1"><updatecheck/><event eventtype="3" eventresult="2" previousversion="0.0.0.0"/></app></request>"#;
    let request = protocol::parse_request(body).unwrap();
    assert_eq!(request.apps[0].events[0].progress(), None);
    // Self-closing elements work as well as the open/close pairs update_engine writes.
    assert!(request.apps[0].updatecheck);
}

#[test]
fn unknown_elements_and_attributes_are_skipped_and_entities_unescaped() {
    let body = br#"<?xml version="1.0"?><!-- hi --><request protocol="3.0" extra="x"><foo><app appid="nested-not-counted"/></foo><app appid="a&amp;b" version="1&lt;2" new="y"><data name="x">text</data><updatecheck targetversionprefix=""/></app></request>"#;
    let request = protocol::parse_request(body).unwrap();
    assert_eq!(request.apps.len(), 1, "only <app> directly under <request>");
    assert_eq!(request.apps[0].appid, "a&b");
    assert_eq!(request.apps[0].version.as_deref(), Some("1<2"));
    assert!(request.apps[0].updatecheck);
}

fn refused(body: &[u8]) -> ParseError {
    match protocol::parse_request(body) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn hostile_or_broken_input_is_refused() {
    let big = vec![b' '; MAX_BODY + 1];
    assert_eq!(refused(&big), ParseError::TooLarge(MAX_BODY + 1));
    assert_eq!(
        refused(b"<request protocol=\"3.0\">\xff</request>"),
        ParseError::NotUtf8
    );
    assert_eq!(refused(b""), ParseError::NotARequest);
    assert_eq!(
        refused(b"<response protocol=\"3.0\"/>"),
        ParseError::NotARequest
    );
    assert_eq!(
        refused(b"<request protocol=\"3.0\"/><request protocol=\"3.0\"/>"),
        ParseError::NotARequest
    );
    assert_eq!(
        refused(b"<!DOCTYPE r [<!ENTITY a \"aaaa\">]><request protocol=\"3.0\"/>"),
        ParseError::Doctype
    );
    assert_eq!(
        refused(b"<request protocol=\"2.0\"/>"),
        ParseError::Protocol("2.0".into())
    );
    assert_eq!(
        refused(b"<request/>"),
        ParseError::Missing {
            element: "request",
            attribute: "protocol"
        }
    );
    assert_eq!(
        refused(b"<request protocol=\"3.0\"><app version=\"1\"/></request>"),
        ParseError::Missing {
            element: "app",
            attribute: "appid"
        }
    );
    assert!(matches!(
        refused(b"<request protocol=\"3.0\"><app appid=\"a\"><event eventtype=\"x\" eventresult=\"1\"/></app></request>"),
        ParseError::NotANumber { attribute: "eventtype", .. }
    ));
    assert!(matches!(
        refused(
            b"<request protocol=\"3.0\"><app appid=\"a\"><event eventtype=\"3\"/></app></request>"
        ),
        ParseError::Missing {
            attribute: "eventresult",
            ..
        }
    ));
    assert!(matches!(
        refused(b"<request protocol=\"3.0\"><app appid=\"a\">"),
        ParseError::Xml(_)
    ));
    assert!(matches!(
        refused(b"<request protocol=\"3.0\"><app appid=\"a\"></request>"),
        ParseError::Xml(_)
    ));
    assert!(matches!(
        refused(b"<request protocol=\"3.0\" protocol=\"3.0\"/>"),
        ParseError::Xml(_)
    ));
    assert!(matches!(
        refused(b"<request protocol=\"3.0\"><app appid=\"&bogus;\"/></request>"),
        ParseError::Xml(_)
    ));
    let long = format!(
        "<request protocol=\"3.0\"><app appid=\"{}\"/></request>",
        "a".repeat(2000)
    );
    assert!(matches!(refused(long.as_bytes()), ParseError::Limit(_)));
}

#[test]
fn counts_and_depth_are_capped() {
    let apps = |n: usize| {
        format!(
            "<request protocol=\"3.0\">{}</request>",
            "<app appid=\"a\"/>".repeat(n)
        )
    };
    assert_eq!(
        protocol::parse_request(apps(MAX_APPS).as_bytes())
            .unwrap()
            .apps
            .len(),
        MAX_APPS
    );
    assert!(matches!(
        refused(apps(MAX_APPS + 1).as_bytes()),
        ParseError::Limit(_)
    ));
    let events = |n: usize| {
        format!(
            "<request protocol=\"3.0\"><app appid=\"a\">{}</app></request>",
            "<event eventtype=\"13\" eventresult=\"1\"/>".repeat(n)
        )
    };
    assert_eq!(
        protocol::parse_request(events(MAX_EVENTS).as_bytes())
            .unwrap()
            .apps[0]
            .events
            .len(),
        MAX_EVENTS
    );
    assert!(matches!(
        refused(events(MAX_EVENTS + 1).as_bytes()),
        ParseError::Limit(_)
    ));
    let deep = format!(
        "<request protocol=\"3.0\">{}{}</request>",
        "<x>".repeat(100),
        "</x>".repeat(100)
    );
    assert!(matches!(refused(deep.as_bytes()), ParseError::Limit(_)));
}

/// The attributes of the first element at `path` (element names from the root), the way
/// update_engine's XPath look-ups find them.
fn attrs_at(xml: &str, path: &[&str]) -> Option<Vec<(String, String)>> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    loop {
        let (start, empty) = match reader.read_event().unwrap() {
            XmlEvent::Start(s) => (s, false),
            XmlEvent::Empty(s) => (s, true),
            XmlEvent::End(_) => {
                stack.pop();
                continue;
            }
            XmlEvent::Eof => return None,
            _ => continue,
        };
        stack.push(start.local_name().as_ref().to_owned());
        if stack.iter().map(String::as_str).eq(path.iter().copied()) {
            return Some(
                start
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            a.key.local_name().as_ref().to_owned(),
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect(),
            );
        }
        if empty {
            stack.pop();
        }
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn offer() -> Offer {
    Offer {
        version: "4081.2.0".into(),
        codebase: "http://10.0.0.1:8080/flatcar/amd64-usr/4081.2.0/?a=1&b=2".into(),
        package_name: "flatcar_production_update.gz".into(),
        size: 482_345_678,
        sha1: [7; 20],
        sha256: [0xAB; 32],
    }
}

#[test]
fn an_update_carries_what_update_engine_reads() {
    let request = protocol::parse_request(&fixture("check.xml")).unwrap();
    let mut response = Response::new(1_700_000_000);
    response.apps.push(AppResponse::answer(
        &request.apps[0],
        UpdateCheck::Update(offer()),
    ));
    let xml = response.to_xml();

    let root = attrs_at(&xml, &["response"]).unwrap();
    assert_eq!(attr(&root, "protocol"), Some("3.0"));
    let daystart = attrs_at(&xml, &["response", "daystart"]).unwrap();
    assert_eq!(
        attr(&daystart, "elapsed_seconds"),
        Some((1_700_000_000u64 % 86_400).to_string().as_str())
    );
    let app = attrs_at(&xml, &["response", "app"]).unwrap();
    assert_eq!(attr(&app, "appid"), Some(FLATCAR_APP_ID));
    assert_eq!(attr(&app, "status"), Some("ok"));
    let ping = attrs_at(&xml, &["response", "app", "ping"]).unwrap();
    assert_eq!(attr(&ping, "status"), Some("ok"));
    let event = attrs_at(&xml, &["response", "app", "event"]).unwrap();
    assert_eq!(attr(&event, "status"), Some("ok"));
    let check = attrs_at(&xml, &["response", "app", "updatecheck"]).unwrap();
    assert_eq!(attr(&check, "status"), Some("ok"));
    let url = attrs_at(&xml, &["response", "app", "updatecheck", "urls", "url"]).unwrap();
    assert_eq!(attr(&url, "codebase"), Some(offer().codebase.as_str()));
    let manifest = attrs_at(&xml, &["response", "app", "updatecheck", "manifest"]).unwrap();
    assert_eq!(attr(&manifest, "version"), Some("4081.2.0"));
    let package = attrs_at(
        &xml,
        &[
            "response",
            "app",
            "updatecheck",
            "manifest",
            "packages",
            "package",
        ],
    )
    .unwrap();
    assert_eq!(attr(&package, "name"), Some("flatcar_production_update.gz"));
    assert_eq!(attr(&package, "size"), Some("482345678"));
    assert_eq!(
        BASE64.decode(attr(&package, "hash").unwrap()).unwrap(),
        [7; 20]
    );
    let action = attrs_at(
        &xml,
        &[
            "response",
            "app",
            "updatecheck",
            "manifest",
            "actions",
            "action",
        ],
    )
    .unwrap();
    assert_eq!(attr(&action, "event"), Some("postinstall"));
    assert_eq!(
        BASE64.decode(attr(&action, "sha256").unwrap()).unwrap(),
        [0xAB; 32]
    );
    assert_eq!(attr(&action, "needsadmin"), Some("false"));
    assert_eq!(attr(&action, "IsDeltaPayload"), Some("false"));
    assert_eq!(attr(&action, "DisablePayloadBackoff"), Some("true"));
}

#[test]
fn noupdate_event_acks_and_unknown_apps() {
    let body = br#"<request protocol="3.0"><app appid="a" version="1"><ping/><updatecheck/></app><app appid="b"><event eventtype="13" eventresult="1"/><event eventtype="14" eventresult="1"/></app><app appid="zzz"><updatecheck/></app></request>"#;
    let request = protocol::parse_request(body).unwrap();
    let mut response = Response::new(86_400 * 3 + 5);
    response
        .apps
        .push(AppResponse::answer(&request.apps[0], UpdateCheck::NoUpdate));
    // An event-only app gets no <updatecheck> even when the caller has an offer.
    response.apps.push(AppResponse::answer(
        &request.apps[1],
        UpdateCheck::Update(offer()),
    ));
    response.apps.push(AppResponse::unknown(&request.apps[2]));
    let xml = response.to_xml();
    assert_eq!(
        xml,
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<response protocol=\"3.0\" server=\"slipway\">\n",
            " <daystart elapsed_seconds=\"5\"/>\n",
            " <app appid=\"a\" status=\"ok\">\n",
            "  <ping status=\"ok\"/>\n",
            "  <updatecheck status=\"noupdate\"/>\n",
            " </app>\n",
            " <app appid=\"b\" status=\"ok\">\n",
            "  <event status=\"ok\"/>\n",
            "  <event status=\"ok\"/>\n",
            " </app>\n",
            " <app appid=\"zzz\" status=\"error-unknownApplication\">\n",
            " </app>\n",
            "</response>\n",
        )
    );
}

#[test]
fn parsed_requests_round_trip_through_serde() {
    let request = protocol::parse_request(&fixture("check-after-reboot.xml")).unwrap();
    let json = serde_json::to_string(&request).unwrap();
    let back: protocol::Request = serde_json::from_str(&json).unwrap();
    assert_eq!(back, request);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = protocol::parse_request(&body);
    }

    #[test]
    fn mutated_real_requests_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = fixture("check.xml");
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let _ = protocol::parse_request(&body);
        let _ = protocol::parse_request(&body[..cut.index(body.len())]);
    }

    #[test]
    fn any_attribute_text_survives_the_response_escaping(
        codebase in "\\PC{0,40}",
        version in "[ -~]{1,20}",
    ) {
        let app = protocol::App { appid: "a".into(), updatecheck: true, ..Default::default() };
        let mut response = Response::new(0);
        response.apps.push(AppResponse::answer(&app, UpdateCheck::Update(Offer {
            codebase: codebase.clone(),
            version: version.clone(),
            ..offer()
        })));
        let xml = response.to_xml();
        let url = attrs_at(&xml, &["response", "app", "updatecheck", "urls", "url"]).unwrap();
        // Attribute-value normalisation turns tabs and newlines into spaces; nothing else
        // changes.
        let normalised: String = codebase
            .chars()
            .map(|c| if matches!(c, '\t' | '\n' | '\r') { ' ' } else { c })
            .collect();
        prop_assert_eq!(attr(&url, "codebase"), Some(normalised.as_str()));
        let manifest = attrs_at(&xml, &["response", "app", "updatecheck", "manifest"]).unwrap();
        prop_assert_eq!(attr(&manifest, "version"), Some(version.as_str()));
    }
}
