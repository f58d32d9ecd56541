//! One UDP socket to one BMC, and the request/answer loop with retransmission.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Largest datagram read; IPMI LAN packets are far smaller.
const MAX_DATAGRAM: usize = 2048;

/// What the caller makes of a received datagram.
pub(crate) enum Verdict<T> {
    /// Not the answer (another session, a stale sequence number, a bad AuthCode,
    /// garbage): keep waiting.
    Discard,
    /// The answer.
    Done(T),
    /// An answer that ends the exchange with an error.
    Fail(Error),
}

/// A connected UDP socket with the timing of a [`Config`](super::Config).
#[derive(Debug)]
pub(crate) struct Link {
    socket: UdpSocket,
    /// "host:port" as configured, for messages.
    pub(crate) peer: String,
    /// Time to wait for an answer to one transmission.
    pub(crate) timeout: Duration,
    /// Retransmissions after the first transmission.
    pub(crate) retries: u32,
}

impl Link {
    /// Resolves `address` and opens a socket connected to it.
    pub(crate) fn open(address: &str, port: u16, timeout: Duration, retries: u32) -> Result<Link> {
        let host = address
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(address);
        let peer_addr: SocketAddr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
            Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address} does not resolve to any address"),
            ))
        })?;
        let local: SocketAddr = if peer_addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(peer_addr)?;
        let peer = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Link {
            socket,
            peer,
            timeout: timeout.max(Duration::from_millis(1)),
            retries,
        })
    }

    /// Sends one datagram and forgets it (used for messages that get no answer).
    pub(crate) fn send_only(&self, packet: &[u8]) {
        let _ = self.socket.send(packet);
    }

    /// Sends `make()`'s packet and waits up to `timeout` for a datagram that
    /// `judge` accepts; retransmits (calling `make` again) up to `retries` times.
    /// Datagrams judged [`Verdict::Discard`] are ignored.
    pub(crate) fn exchange<T>(
        &self,
        mut make: impl FnMut() -> Result<Vec<u8>>,
        mut judge: impl FnMut(&[u8]) -> Verdict<T>,
    ) -> Result<T> {
        let start = Instant::now();
        let tries = self.retries.saturating_add(1);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for _ in 0..tries {
            let packet = make()?;
            match self.socket.send(&packet) {
                Ok(_) => {}
                // An ICMP "port unreachable" from an earlier send: nobody is there
                // (yet); keep trying until the time is up.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e.into()),
            }
            let deadline = Instant::now() + self.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.socket.set_read_timeout(Some(left))?;
                match self.socket.recv(&mut buf) {
                    Ok(n) => {
                        let datagram = buf.get(..n).unwrap_or_default();
                        match judge(datagram) {
                            Verdict::Discard => {}
                            Verdict::Done(v) => return Ok(v),
                            Verdict::Fail(e) => return Err(e),
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(Error::Timeout {
            addr: self.peer.clone(),
            tries,
            elapsed: start.elapsed(),
        })
    }
}
