//! The fast path for the common query: one question, class IN, for a name of the
//! cluster zone that has A or PTR records. It is answered straight from the zone into a
//! reply buffer, with no task, no allocation of a full message and no catalog walk; a
//! boot storm is exactly this query, thousands of times a second.
//!
//! Anything else — other types, names that do not exist, names outside the zone (to
//! forward), EDNS with options or the DO bit, compressed or odd queries — returns
//! `None` and goes the general way (hickory's catalog), which answers it as before.
//! The reply is byte-for-byte what the general path sends for these queries: header
//! with AA (and RA when forwarding is on), the question echoed, the records with their
//! owner as stored (a pointer to the question when spelled alike), and an OPT record
//! (payload 1232) when the query had one.

use hickory_proto::rr::{Name, RData, RecordType};

use crate::handle::ZoneHandle;
use crate::zone::Answer;

/// The UDP payload size announced in answers, as the general path does.
const EDNS_PAYLOAD: u16 = 1232;
/// Largest answer without EDNS.
const PLAIN_MAX: usize = 512;

/// What the query says, when it is one the fast path takes.
struct Query<'a> {
    id: [u8; 2],
    rd: bool,
    /// The question section, verbatim (name, type, class).
    question: &'a [u8],
    labels: Vec<&'a [u8]>,
    qtype: RecordType,
    edns: bool,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads a query the fast path can answer, or `None`.
fn parse(b: &[u8]) -> Option<Query<'_>> {
    let flags = u16_at(b, 2)?;
    // QR = 0, opcode QUERY, no TC; AA/AD/CD ignored as a server does.
    if flags & 0x8000 != 0 || flags & 0x7800 != 0 || flags & 0x0200 != 0 {
        return None;
    }
    let (qd, an, ns, ar) = (u16_at(b, 4)?, u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?);
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    let mut total = 1;
    loop {
        let len = usize::from(*b.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        // No compression in a question here; label and name lengths per RFC 1035.
        if len > 63 {
            return None;
        }
        total += len + 1;
        if total > 255 {
            return None;
        }
        labels.push(b.get(i + 1..i + 1 + len)?);
        i += 1 + len;
    }
    let qtype = u16_at(b, i)?;
    let qclass = u16_at(b, i + 2)?;
    if qclass != 1 {
        return None;
    }
    let question = b.get(12..i + 4)?;
    let mut rest = i + 4;
    let mut edns = false;
    if ar == 1 {
        // Only a plain OPT: root owner, type 41, version 0, no DO bit, no options.
        if *b.get(rest)? != 0 || u16_at(b, rest + 1)? != 41 {
            return None;
        }
        let (version, do_bit, rdlen) = (
            *b.get(rest + 6)?,
            u16_at(b, rest + 7)? & 0x8000,
            u16_at(b, rest + 9)?,
        );
        if version != 0 || do_bit != 0 || rdlen != 0 {
            return None;
        }
        edns = true;
        rest += 11;
    }
    if rest != b.len() {
        return None;
    }
    let qtype = match qtype {
        1 => RecordType::A,
        12 => RecordType::PTR,
        _ => return None,
    };
    Some(Query {
        id: [b[0], b[1]],
        rd: flags & 0x0100 != 0,
        question,
        labels,
        qtype,
        edns,
    })
}

/// The answer to `query` when the fast path can give it; `None` sends the query the
/// general way.
pub fn answer(zone: &ZoneHandle, query: &[u8], recursion_available: bool) -> Option<Vec<u8>> {
    let q = parse(query)?;
    let name = Name::from_labels(q.labels.iter().copied()).ok()?;
    let Answer::Records {
        answers,
        additionals,
    } = zone.lookup(&name, q.qtype)
    else {
        return None;
    };
    if !additionals.is_empty() || answers.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(64 + answers.len() * 32);
    out.extend_from_slice(&q.id);
    let mut flags: u16 = 0x8000 | 0x0400; // QR, AA
    if q.rd {
        flags |= 0x0100;
    }
    if recursion_available {
        flags |= 0x0080;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::try_from(answers.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&u16::from(q.edns).to_be_bytes());
    out.extend_from_slice(q.question);
    for r in &answers {
        if r.name != name || r.dns_class != hickory_proto::rr::DNSClass::IN {
            return None;
        }
        let rdata: Vec<u8> = match &r.data {
            RData::A(a) => a.0.octets().to_vec(),
            RData::PTR(p) => {
                let mut w = Vec::new();
                for label in p.0.iter() {
                    w.push(u8::try_from(label.len()).ok()?);
                    w.extend_from_slice(label);
                }
                w.push(0);
                w
            }
            _ => return None,
        };
        // The owner as stored (the general path's spelling): a pointer to the
        // question when the query spelled it the same way.
        if r.name.iter().eq(q.labels.iter().copied()) {
            out.extend_from_slice(&[0xc0, 0x0c]);
        } else {
            for label in r.name.iter() {
                out.push(u8::try_from(label.len()).ok()?);
                out.extend_from_slice(label);
            }
            out.push(0);
        }
        out.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&r.ttl.to_be_bytes());
        out.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    if q.edns {
        out.push(0);
        out.extend_from_slice(&41u16.to_be_bytes());
        out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    let limit = if q.edns {
        usize::from(EDNS_PAYLOAD)
    } else {
        PLAIN_MAX
    };
    (out.len() <= limit).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_queries_never_panic() {
        // Truncations of a valid query and random bytes: every prefix is refused or
        // parsed, never a panic.
        let q: &[u8] = &[
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 3, b'c', b'p', b'1', 3, b'l', b'a',
            b'b', 0, 0, 1, 0, 1, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(parse(q).is_some());
        for n in 0..q.len() {
            assert!(parse(&q[..n]).is_none(), "prefix {n}");
        }
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            let mut b = q.to_vec();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = (x as usize) % b.len();
                b[i] = (x >> 8) as u8;
            }
            let _ = parse(&b);
        }
    }

    fn len_of(b: &[u8]) -> usize {
        b.len()
    }

    #[test]
    fn only_plain_queries_take_the_fast_path() {
        let base: Vec<u8> = vec![
            0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'h', b'1', 0, 0, 1, 0, 1,
        ];
        assert!(parse(&base).is_some());
        let mut response = base.clone();
        response[2] |= 0x80;
        assert!(parse(&response).is_none(), "a response");
        let mut aaaa = base.clone();
        aaaa[17] = 28;
        assert!(parse(&aaaa).is_none(), "AAAA goes the general way");
        let mut chaos = base.clone();
        chaos[19] = 3;
        assert!(parse(&chaos).is_none(), "class CH");
        let mut trailing = base.clone();
        trailing.push(0);
        assert!(parse(&trailing).is_none(), "trailing bytes");
        let mut with_opt = base.clone();
        with_opt[11] = 1;
        with_opt.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert!(parse(&with_opt).is_some_and(|q| q.edns), "plain EDNS");
        let mut dnssec = with_opt.clone();
        dnssec[len_of(&base) + 7] = 0x80;
        assert!(parse(&dnssec).is_none(), "DO bit");
        let mut cookie = with_opt.clone();
        let n = cookie.len();
        cookie[n - 1] = 4;
        cookie.extend_from_slice(&[0, 10, 0, 0]);
        assert!(parse(&cookie).is_none(), "an EDNS option");
        let mut pointer = base.clone();
        pointer[12] = 0xc0;
        assert!(parse(&pointer).is_none(), "compressed question");
    }
}
