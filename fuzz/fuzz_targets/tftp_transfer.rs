//! One TFTP read transfer (crates/tftp `Endpoint` and `Transfer`) driven by a sequence
//! of client datagrams, strangers' datagrams and passing time read from the input. The
//! input starts with the file's size (two bytes) and the request (a frame); then steps
//! (see below). Besides never panicking, the transfer must:
//! - send only well-formed packets: DATA of the negotiated size at most, carrying the
//!   file's own bytes at the right offset, to the client; ERROR 5 to strangers;
//! - send a bounded number of packets per step (a window, the strangers, an ERROR);
//! - end (no deadline, nothing to send) once it has an outcome, and then stay ended;
//! - never count more bytes acknowledged than the file has.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use slipway_fuzz::Input;
use slipway_tftp::request::{Accept, Endpoint};
use slipway_tftp::wire::{ErrorCode, Repr};
use slipway_tftp::{Config, Transfer};

const MAX_STEPS: usize = 512;

/// The byte at `offset` of the file served.
fn byte_at(offset: u64) -> u8 {
    (offset % 251) as u8
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let size = u64::from(input.u16());
    let rrq = input.frame();
    let config = Config {
        max_retries: 3,
        ..Config::default()
    };
    let client: SocketAddr = SocketAddr::from(([192, 0, 2, 10], 2070));
    let stranger: SocketAddr = SocketAddr::from(([192, 0, 2, 66], 2070));
    let mut endpoint = Endpoint::new(&config);
    let (id, request) = match endpoint.handle(client, rrq) {
        Accept::Start {
            id,
            request,
            replaces,
        } => {
            assert!(replaces.is_none());
            (id, request)
        }
        Accept::Refuse(refusal) => {
            assert!(matches!(
                Repr::parse_bytes(&refusal.reply()),
                Ok(Repr::Error { .. })
            ));
            return;
        }
        Accept::Ignore(_) => return,
    };
    let file: Vec<u8> = (0..size).map(byte_at).collect();
    let mut now = Instant::now();
    let mut transfer = Transfer::new(now, client, &request, file, &config);
    let negotiated = *transfer.negotiated();
    let mut highest_sent: u64 = 0;
    let mut buf = Vec::new();
    let mut ended = false;
    for _ in 0..MAX_STEPS {
        // What is due goes out first, as the driver does.
        let mut sent = 0;
        let mut strangers = 0;
        while let Some(transmit) = transfer.poll_transmit(&mut buf) {
            sent += 1;
            assert_eq!(transmit.size, buf.len());
            let repr = Repr::parse_bytes(&buf).unwrap_or_else(|e| panic!("sent {buf:?}: {e}"));
            if transmit.destination == stranger {
                strangers += 1;
                assert!(matches!(
                    repr,
                    Repr::Error {
                        code: ErrorCode::UnknownTransferId,
                        ..
                    }
                ));
                continue;
            }
            assert_eq!(transmit.destination, client);
            match repr {
                Repr::Data { block, data } => {
                    assert!(!ended, "DATA after the end");
                    assert!(data.len() <= usize::from(negotiated.blksize));
                    // Which block is it? The one after the last acknowledged, within a
                    // window of it; the 16-bit number wraps.
                    let base = transfer.bytes_acked() / u64::from(negotiated.blksize);
                    let ahead = u64::from(block.wrapping_sub(base as u16));
                    assert!(
                        ahead >= 1 && ahead <= u64::from(negotiated.windowsize),
                        "block {block} sent with {base} acknowledged"
                    );
                    let n = base + ahead;
                    highest_sent = highest_sent.max(n);
                    let offset = (n - 1) * u64::from(negotiated.blksize);
                    for (i, b) in data.iter().enumerate() {
                        assert_eq!(*b, byte_at(offset + i as u64), "block {n} byte {i}");
                    }
                }
                Repr::Oack { .. } => assert!(negotiated.oack && highest_sent == 0),
                Repr::Error { .. } => {}
                other => panic!("the server sent {other:?}"),
            }
            assert!(
                sent <= usize::from(negotiated.windowsize) + 2 + strangers,
                "{sent} packets in one step"
            );
        }
        assert!(transfer.bytes_acked() <= size);
        if transfer.is_finished() {
            assert!(transfer.poll_timeout().is_none());
            if !ended {
                ended = true;
                endpoint.finished(client, id);
                assert_eq!(endpoint.active(), 0);
            }
        }
        if input.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0 => transfer.handle(now, client, input.frame()),
            1 => transfer.handle(now, stranger, input.frame()),
            2 => {
                now += Duration::from_millis(u64::from(input.u16()));
                transfer.handle_timeout(now);
            }
            3 => {
                let block = input.u16().to_be_bytes();
                transfer.handle(now, client, &[0, 4, block[0], block[1]]);
            }
            4 => {
                // The client acknowledges everything sent so far.
                let block = (highest_sent as u16).to_be_bytes();
                transfer.handle(now, client, &[0, 4, block[0], block[1]]);
            }
            5 => {
                // The client sends its request again: the running transfer answers it.
                let again = endpoint.handle(client, rrq);
                if !ended {
                    assert!(matches!(again, Accept::Ignore(_)), "{again:?}");
                }
            }
            6 => {
                if let Some(deadline) = transfer.poll_timeout() {
                    now = now.max(deadline);
                }
                transfer.handle_timeout(now);
            }
            _ => transfer.cancel("shutting down"),
        }
    }
});
