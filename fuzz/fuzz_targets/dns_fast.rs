//! The DNS server's UDP fast path (crates/dns `fast.rs`, through
//! `slipway_dns::fuzzing::fast_answer`) on the zone of examples/lab.yaml: any bytes as
//! a query. When it answers, the reply must be a well-formed DNS response (hickory's
//! decoder reads it) to a query hickory reads too, with the query's id, its question
//! echoed, the records the zone holds for it, and the size a UDP client can take.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use slipway_dns::proto::op::{Message, MessageType};
use slipway_dns::{Answer, ZoneHandle};

fn zone() -> &'static ZoneHandle {
    static ZONE: OnceLock<ZoneHandle> = OnceLock::new();
    ZONE.get_or_init(slipway_fuzz::dns_zone)
}

fuzz_target!(|data: &[u8]| {
    for recursion_available in [false, true] {
        let Some(reply) = slipway_dns::fuzzing::fast_answer(zone(), data, recursion_available)
        else {
            continue;
        };
        let query = Message::from_vec(data)
            .unwrap_or_else(|e| panic!("answered a query hickory cannot read: {e}"));
        let answer =
            Message::from_vec(&reply).unwrap_or_else(|e| panic!("reply does not decode: {e}"));
        assert!(reply.len() <= if query.edns.is_some() { 1232 } else { 512 });
        assert_eq!(answer.metadata.id, query.metadata.id);
        assert_eq!(answer.metadata.message_type, MessageType::Response);
        assert!(answer.metadata.authoritative);
        assert_eq!(answer.metadata.recursion_available, recursion_available);
        assert_eq!(answer.queries, query.queries);
        assert_eq!(answer.edns.is_some(), query.edns.is_some());
        let [question] = query.queries.as_slice() else {
            panic!("answered {} questions", query.queries.len());
        };
        let Answer::Records { answers, .. } = zone().lookup(question.name(), question.query_type())
        else {
            panic!("answered a name the zone does not have");
        };
        assert_eq!(answer.answers, answers);
    }
});
