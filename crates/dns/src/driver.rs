//! The tokio driver: listeners, hickory's catalog of zone handlers, forwarding, TCP limits.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, Record, RecordType, TSigResponseContext};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::tcp::TcpStream as DnsTcpStream;
use hickory_server::net::xfer::Protocol;
use hickory_server::resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverOpts, ServerOrderingStrategy,
};
use hickory_server::server::{
    Request, RequestHandler, RequestInfo, ResponseHandle, ResponseHandler, ResponseInfo,
    TimeoutStream,
};
use hickory_server::store::forwarder::{ForwardConfig, ForwardZoneHandler};
use hickory_server::zone_handler::{
    AuthLookup, AxfrPolicy, Catalog, LookupControlFlow, LookupError, LookupOptions, LookupRecords,
    MessageResponse, MessageResponseBuilder, Queries, ZoneHandler, ZoneTransfer, ZoneType,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::{Answer, Error, ZoneHandle};

/// Limits and timeouts of [`serve`]. Start from [`Options::default`] and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Most TCP connections open at once; further ones are closed at once (default 128).
    pub tcp_max_connections: usize,
    /// A TCP connection that sends no complete query for this long is closed
    /// (default 10 s).
    pub tcp_idle_timeout: Duration,
    /// How long to wait for an upstream's answer per try (default 2 s). A query is
    /// tried twice (the upstreams in the order given), so with only dead upstreams
    /// the client gets SERVFAIL after about twice this: 4 s by default, within a
    /// stub resolver's usual 5 s.
    pub upstream_timeout: Duration,
    /// Most forwarded queries in flight at once; beyond it a query gets SERVFAIL at
    /// once instead of piling up (default 512).
    pub max_forwarded: usize,
    /// The only client networks answered (and forwarded for); a UDP query from any
    /// other source is dropped unanswered (no reflection, no open resolver) and a TCP
    /// connection closed. Default: loopback only; `serve` adds the cluster's subnet.
    pub allowed_clients: Vec<ipnet::IpNet>,
    /// Most UDP queries answered per second per client address (a token bucket with
    /// twice this as burst); beyond it queries are dropped (response-rate limiting:
    /// a spoofed source cannot turn slipway into a flood). 0: no limit. Default 1000.
    pub rate_limit: u32,
}

/// The largest UDP answer sent, whatever the client's EDNS buffer: 1232 bytes fits
/// every path's MTU without fragmentation (the DNS Flag Day 2020 figure); larger
/// answers are truncated and the client retries over TCP.
pub const MAX_UDP_ANSWER: u16 = 1232;

impl Default for Options {
    fn default() -> Self {
        Options {
            tcp_max_connections: 128,
            tcp_idle_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(2),
            max_forwarded: 512,
            allowed_clients: vec![
                ipnet::IpNet::from(
                    ipnet::Ipv4Net::new(std::net::Ipv4Addr::LOCALHOST, 8).unwrap_or_default(),
                ),
                ipnet::IpNet::from(
                    ipnet::Ipv6Net::new(std::net::Ipv6Addr::LOCALHOST, 128).unwrap_or_default(),
                ),
            ],
            rate_limit: 1000,
        }
    }
}

/// Who the server answers and how often: the part of [`Options`] a running server
/// takes changes of ([`serve_with_access`]), e.g. on a reload of the cluster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// As [`Options::allowed_clients`].
    pub allowed_clients: Vec<ipnet::IpNet>,
    /// As [`Options::rate_limit`].
    pub rate_limit: u32,
}

impl Access {
    /// The access part of `options`.
    pub fn of(options: &Options) -> Access {
        Access {
            allowed_clients: options.allowed_clients.clone(),
            rate_limit: options.rate_limit,
        }
    }
}

/// Whether `source` is in one of `allowed`.
fn allowed(allowed: &[ipnet::IpNet], source: std::net::IpAddr) -> bool {
    let source = match source {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, std::net::IpAddr::V4),
        v4 => v4,
    };
    allowed.iter().any(|net| net.contains(&source))
}

/// A token bucket per client address, in bounded memory: at most [`RateLimit::MAX_CLIENTS`]
/// addresses are tracked; when full, buckets that have refilled are dropped, and if
/// none has, a new address shares nothing and is limited as if its bucket were empty.
struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: std::collections::HashMap<std::net::IpAddr, (f64, std::time::Instant)>,
}

impl RateLimit {
    const MAX_CLIENTS: usize = 65_536;

    fn new(per_second: u32) -> Option<RateLimit> {
        (per_second > 0).then(|| RateLimit {
            per_second: f64::from(per_second),
            burst: f64::from(per_second) * 2.0,
            buckets: std::collections::HashMap::new(),
        })
    }

    /// Takes a token for `source` at `now`; false when it has none left.
    fn take(&mut self, source: std::net::IpAddr, now: std::time::Instant) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= Self::MAX_CLIENTS {
            let (rate, burst) = (self.per_second, self.burst);
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            if self.buckets.len() >= Self::MAX_CLIENTS {
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(source).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The two sockets the server answers on, normally on the same address and port.
#[derive(Debug)]
pub struct Listeners {
    /// The bound UDP socket.
    pub udp: UdpSocket,
    /// The bound TCP listener.
    pub tcp: TcpListener,
}

impl Listeners {
    /// Binds UDP and TCP on `address`. With port 0 both get the same free port (the
    /// UDP port is picked first, then TCP takes it; retried a few times if taken).
    pub async fn bind(address: SocketAddr) -> Result<Listeners, Error> {
        let bind_error = |source| Error::Bind { address, source };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let udp = UdpSocket::bind(address).await.map_err(bind_error)?;
            let port = udp.local_addr().map_err(bind_error)?.port();
            let tcp_address = SocketAddr::new(address.ip(), port);
            match TcpListener::bind(tcp_address).await {
                Ok(tcp) => return Ok(Listeners { udp, tcp }),
                Err(e)
                    if address.port() == 0
                        && e.kind() == io::ErrorKind::AddrInUse
                        && attempts < 16 =>
                {
                    continue;
                }
                Err(source) => {
                    return Err(Error::Bind {
                        address: tcp_address,
                        source,
                    });
                }
            }
        }
    }

    /// The UDP socket's address.
    pub fn udp_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// The TCP listener's address.
    pub fn tcp_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves the zone on `listeners` until `shutdown` completes, then stops accepting,
/// gives UDP tasks up to 5 s to finish, closes TCP connections and returns `Ok`.
///
/// Names in the zone's origins are answered authoritatively from `zone` (read at
/// every query, so [`ZoneHandle::set_dynamic`] takes effect at once). Other names
/// are forwarded to `upstreams` (UDP, then TCP when the answer is truncated; answers
/// are cached by their TTL), or REFUSED when `upstreams` is empty or the query does
/// not ask for recursion. Logs one line when it starts.
///
/// Returns an error if the forwarder cannot be set up or a listener fails.
pub async fn serve(
    listeners: Listeners,
    zone: ZoneHandle,
    upstreams: &[SocketAddr],
    options: &Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    // Nobody changes this server's access: the sender lives as long as the server.
    let (keep, access) = tokio::sync::watch::channel(Access::of(options));
    let served = serve_with_access(listeners, zone, upstreams, options, access, shutdown).await;
    drop(keep);
    served
}

/// [`serve`], taking who is answered and how often from `access` (its first value,
/// then every change sent to it: a reload), instead of from `options`.
pub async fn serve_with_access(
    listeners: Listeners,
    zone: ZoneHandle,
    upstreams: &[SocketAddr],
    options: &Options,
    access: tokio::sync::watch::Receiver<Access>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let udp_addr = listeners.udp.local_addr().map_err(|e| Error::Serve {
        reason: format!("UDP socket: {e}"),
    })?;
    let tcp_addr = listeners.tcp.local_addr().map_err(|e| Error::Serve {
        reason: format!("TCP listener: {e}"),
    })?;
    let origins = zone.origins();
    let handler = SharedCatalog {
        catalog: Arc::new(build_catalog(&zone, &origins, upstreams, options)?),
        recursion_available: !upstreams.is_empty(),
    };

    let domain = origins.first().map(ToString::to_string).unwrap_or_default();
    info!(
        udp = %udp_addr,
        tcp = %tcp_addr,
        %domain,
        reverse_zones = origins.len().saturating_sub(1),
        upstreams = ?upstreams,
        "DNS server listening"
    );

    let tcp = serve_tcp(
        listeners.tcp,
        handler.clone(),
        options.tcp_max_connections,
        options.tcp_idle_timeout,
        access.clone(),
    );
    let udp = serve_udp(
        Arc::new(listeners.udp),
        zone,
        handler,
        options.max_forwarded,
        access,
    );
    tokio::pin!(tcp, udp, shutdown);
    let result = tokio::select! {
        () = &mut shutdown => Ok(()),
        e = &mut udp => Err(Error::Serve {
            reason: format!("UDP listener: {e}"),
        }),
        () = &mut tcp => Err(Error::Serve { reason: "the TCP listener stopped".to_string() }),
    };
    info!(udp = %udp_addr, tcp = %tcp_addr, "DNS server stopped");
    result
}

fn build_catalog(
    zone: &ZoneHandle,
    origins: &[Name],
    upstreams: &[SocketAddr],
    options: &Options,
) -> Result<Catalog, Error> {
    let mut catalog = Catalog::new();
    for origin in origins {
        let origin = LowerName::new(origin);
        let handler = ClusterZoneHandler {
            origin: origin.clone(),
            zone: zone.clone(),
        };
        catalog.upsert(origin, vec![Arc::new(handler)]);
    }
    if !upstreams.is_empty() {
        let forwarder = BoundedForwarder {
            inner: forwarder(upstreams, options)?,
            permits: Semaphore::new(options.max_forwarded.max(1)),
        };
        catalog.upsert(LowerName::new(&Name::root()), vec![Arc::new(forwarder)]);
    }
    Ok(catalog)
}

fn forwarder(upstreams: &[SocketAddr], options: &Options) -> Result<ForwardZoneHandler, Error> {
    let name_servers = upstreams
        .iter()
        .map(|upstream| {
            let mut udp = ConnectionConfig::udp();
            udp.port = upstream.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = upstream.port();
            NameServerConfig::new(upstream.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut resolver = ResolverOpts::default();
    resolver.timeout = options.upstream_timeout;
    // One retry after the first try (hickory counts retries).
    resolver.attempts = 1;
    // Ask the upstreams in the order given, as resolv.conf does.
    resolver.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
    let config = ForwardConfig {
        name_servers,
        options: Some(resolver),
    };
    ForwardZoneHandler::builder_tokio(config)
        .build()
        .map_err(|reason| Error::Forwarder { reason })
}

/// hickory's catalog, shared by the UDP server and the TCP loop.
#[derive(Clone)]
struct SharedCatalog {
    catalog: Arc<Catalog>,
    /// Whether other names are forwarded: then every answer says "recursion
    /// available" (RA), the authoritative ones included, as BIND and dnsmasq do.
    recursion_available: bool,
}

#[async_trait::async_trait]
impl RequestHandler for SharedCatalog {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let mut response_handle = SetRecursionAvailable {
            inner: response_handle,
            recursion_available: self.recursion_available,
        };
        if let Some(query) = request.queries.queries().first()
            && query.query_type() == RecordType::ANY
        {
            return minimal_any(request, query.name(), &mut response_handle).await;
        }
        self.catalog
            .handle_request::<_, T>(request, response_handle)
            .await
    }
}

/// RFC 8482: an ANY query gets one synthesized HINFO record ("RFC8482"), never the
/// whole of a name's records (nor a forwarded ANY): no amplification through ANY.
async fn minimal_any<R: ResponseHandler>(
    request: &Request,
    name: &LowerName,
    response_handle: &mut R,
) -> ResponseInfo {
    let mut metadata = hickory_proto::op::Metadata::response_from_request(&request.metadata);
    metadata.authoritative = true;
    let hinfo = Record::from_rdata(
        Name::from(name.clone()),
        3600,
        hickory_proto::rr::RData::HINFO(hickory_proto::rr::rdata::HINFO::new(
            "RFC8482".into(),
            String::new(),
        )),
    );
    let answers = [hinfo];
    let response = MessageResponseBuilder::from_message_request(request).build(
        metadata,
        answers.iter(),
        [].iter(),
        [].iter(),
        [].iter(),
    );
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            debug!(%error, "DNS: cannot send the RFC 8482 answer");
            let mut metadata =
                hickory_proto::op::Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            Header {
                metadata,
                counts: Default::default(),
            }
            .into()
        }
    }
}

/// Sets the RA flag of every response to the server's.
#[derive(Clone)]
struct SetRecursionAvailable<R> {
    inner: R,
    recursion_available: bool,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for SetRecursionAvailable<R> {
    async fn send_response<'a>(
        &mut self,
        mut response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        response.metadata_mut().recursion_available = self.recursion_available;
        self.inner.send_response(response).await
    }
}

/// One zone (forward or reverse) of the cluster, answered from the shared [`ZoneHandle`].
struct ClusterZoneHandler {
    origin: LowerName,
    zone: ZoneHandle,
}

fn refused() -> LookupControlFlow<AuthLookup> {
    LookupControlFlow::Break(Err(LookupError::from(ResponseCode::Refused)))
}

#[async_trait::async_trait]
impl ZoneHandler for ClusterZoneHandler {
    fn zone_type(&self) -> ZoneType {
        ZoneType::Primary
    }

    fn axfr_policy(&self) -> AxfrPolicy {
        AxfrPolicy::Deny
    }

    fn origin(&self) -> &LowerName {
        &self.origin
    }

    async fn lookup(
        &self,
        name: &LowerName,
        rtype: RecordType,
        _request_info: Option<&RequestInfo<'_>>,
        _lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        if matches!(rtype, RecordType::AXFR | RecordType::IXFR) {
            return refused();
        }
        match self.zone.lookup(name, rtype) {
            Answer::Records {
                answers,
                additionals,
            } => {
                let additionals =
                    (!additionals.is_empty()).then_some(LookupRecords::Section(additionals));
                LookupControlFlow::Break(Ok(AuthLookup::answers(
                    LookupRecords::Section(answers),
                    additionals,
                )))
            }
            Answer::NoData { .. } => LookupControlFlow::Break(Err(LookupError::NameExists)),
            Answer::NxDomain { .. } => {
                LookupControlFlow::Break(Err(LookupError::from(ResponseCode::NXDomain)))
            }
            Answer::NotAuthoritative => refused(),
        }
    }

    async fn search(
        &self,
        request: &Request,
        lookup_options: LookupOptions,
    ) -> (LookupControlFlow<AuthLookup>, Option<TSigResponseContext>) {
        let info = match request.request_info() {
            Ok(info) => info,
            Err(e) => return (LookupControlFlow::Break(Err(e)), None),
        };
        if info.query.query_class() != DNSClass::IN {
            return (refused(), None);
        }
        let flow = self
            .lookup(
                info.query.name(),
                info.query.query_type(),
                Some(&info),
                lookup_options,
            )
            .await;
        (flow, None)
    }

    async fn nsec_records(
        &self,
        _name: &LowerName,
        _lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        LookupControlFlow::Break(Err(LookupError::from(ResponseCode::NotImp)))
    }

    async fn zone_transfer(
        &self,
        _request: &Request,
        _lookup_options: LookupOptions,
        _now: u64,
    ) -> Option<(
        Result<ZoneTransfer, LookupError>,
        Option<TSigResponseContext>,
    )> {
        Some((Err(LookupError::from(ResponseCode::Refused)), None))
    }
}

/// hickory's forwarder, with a cap on the queries in flight.
struct BoundedForwarder {
    inner: ForwardZoneHandler,
    permits: Semaphore,
}

impl BoundedForwarder {
    fn busy(&self) -> LookupControlFlow<AuthLookup> {
        debug!(
            limit = self.permits.available_permits(),
            "DNS: too many forwarded queries in flight, answering SERVFAIL"
        );
        LookupControlFlow::Break(Err(LookupError::from(ResponseCode::ServFail)))
    }
}

#[async_trait::async_trait]
impl ZoneHandler for BoundedForwarder {
    fn zone_type(&self) -> ZoneType {
        ZoneType::External
    }

    fn axfr_policy(&self) -> AxfrPolicy {
        AxfrPolicy::Deny
    }

    fn origin(&self) -> &LowerName {
        self.inner.origin()
    }

    async fn lookup(
        &self,
        name: &LowerName,
        rtype: RecordType,
        request_info: Option<&RequestInfo<'_>>,
        lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        let Ok(_permit) = self.permits.try_acquire() else {
            return self.busy();
        };
        self.inner
            .lookup(name, rtype, request_info, lookup_options)
            .await
    }

    async fn search(
        &self,
        request: &Request,
        lookup_options: LookupOptions,
    ) -> (LookupControlFlow<AuthLookup>, Option<TSigResponseContext>) {
        let Ok(_permit) = self.permits.try_acquire() else {
            return (self.busy(), None);
        };
        self.inner.search(request, lookup_options).await
    }

    async fn nsec_records(
        &self,
        name: &LowerName,
        lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        self.inner.nsec_records(name, lookup_options).await
    }

    async fn zone_transfer(
        &self,
        _request: &Request,
        _lookup_options: LookupOptions,
        _now: u64,
    ) -> Option<(
        Result<ZoneTransfer, LookupError>,
        Option<TSigResponseContext>,
    )> {
        Some((Err(LookupError::from(ResponseCode::Refused)), None))
    }
}

/// Answers UDP queries: the common one (an A or PTR name of the zone) at once in this
/// loop ([`crate::fast`]), every other one in its own task through hickory's catalog,
/// at most `max_slow` of those at once (beyond, the query is dropped and the client
/// retries). Returns only when the socket fails.
async fn serve_udp(
    socket: Arc<UdpSocket>,
    zone: ZoneHandle,
    handler: SharedCatalog,
    max_slow: usize,
    mut access: tokio::sync::watch::Receiver<Access>,
) -> io::Error {
    let mut current = access.borrow_and_update().clone();
    let mut limit = RateLimit::new(current.rate_limit);
    let mut refused_logged: Option<std::time::Instant> = None;
    // Forwarded queries wait on upstreams; allow them beside the cap on forwarding.
    let slow = Arc::new(Semaphore::new(max_slow.max(1) * 2));
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, src) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP port unreachable from an earlier reply, and the like: transient.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => return e,
        };
        if access.has_changed().unwrap_or(false) {
            let next = access.borrow_and_update().clone();
            if next.rate_limit != current.rate_limit {
                limit = RateLimit::new(next.rate_limit);
            }
            info!(clients = ?next.allowed_clients, rate_limit = next.rate_limit, "DNS: access changed");
            current = next;
        }
        if !allowed(&current.allowed_clients, src.ip()) {
            let now = std::time::Instant::now();
            if refused_logged.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
                refused_logged = Some(now);
                warn!(%src, "DNS: query from outside the allowed client networks dropped (logged once per 10 s)");
            }
            continue;
        }
        if let Some(limit) = limit.as_mut()
            && !limit.take(src.ip(), std::time::Instant::now())
        {
            debug!(%src, "DNS: over the per-client rate limit, dropping");
            continue;
        }
        let query = &buf[..n];
        if let Some(reply) = crate::fast::answer(&zone, query, handler.recursion_available) {
            if let Err(error) = socket.send_to(&reply, src).await {
                debug!(%src, %error, "DNS: cannot answer over UDP");
            }
            continue;
        }
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = slow.clone().try_acquire_owned() else {
            debug!(%src, "DNS: too many queries in progress, dropping one");
            continue;
        };
        let Ok(header) = Header::read(&mut BinDecoder::new(query)) else {
            continue;
        };
        if header.metadata.message_type == MessageType::Response {
            continue;
        }
        let bytes = query.to_vec();
        let (socket, handler) = (socket.clone(), handler.clone());
        tasks.spawn(async move {
            let mut reply = UdpReply { socket, dst: src };
            match Request::from_bytes(bytes, src, Protocol::Udp) {
                Ok(request) => {
                    handler
                        .handle_request::<_, TokioTime>(&request, reply)
                        .await;
                }
                Err(error) => {
                    debug!(%src, %error, "DNS: malformed query over UDP, answering FORMERR");
                    let _ = form_error(&header, &mut reply).await;
                }
            }
            drop(permit);
        });
    }
}

/// Answers a query that could not be parsed (beyond its `header`) with FORMERR.
async fn form_error(header: &Header, reply: &mut impl ResponseHandler) -> Result<(), NetError> {
    let queries = Queries::read(&mut BinDecoder::new(&[]), 0)?;
    let message = MessageResponseBuilder::new(&queries, None)
        .error_msg(&header.metadata, ResponseCode::FormErr);
    reply.send_response(message).await.map(drop)
}

/// Sends a response to one UDP client, truncated to what it can take.
#[derive(Clone)]
struct UdpReply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        // As hickory's own UDP path: at most the client's EDNS payload (512 bytes
        // without EDNS); what does not fit is truncated (TC) by the encoder.
        let max = response
            .edns()
            .map_or(512, |e| e.max_payload())
            .min(MAX_UDP_ANSWER);
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        self.socket.send_to(&bytes, self.dst).await?;
        Ok(info)
    }
}

/// Accepts TCP connections, at most `max_connections` at once, each closed after
/// `idle_timeout` without a complete query. Returns only if accepting fails for good.
async fn serve_tcp(
    listener: TcpListener,
    handler: SharedCatalog,
    max_connections: usize,
    idle_timeout: Duration,
    access: tokio::sync::watch::Receiver<Access>,
) {
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, a connection reset before accept, ...:
                // transient; wait a little instead of spinning.
                warn!(%error, "DNS: cannot accept a TCP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !allowed(&access.borrow().allowed_clients, peer.ip()) {
            debug!(%peer, "DNS: TCP connection from outside the allowed client networks closed");
            drop(stream);
            continue;
        }
        while connections.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(%peer, "DNS: too many TCP connections, closing this one");
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        connections.spawn(async move {
            serve_tcp_connection(stream, peer, handler, idle_timeout).await;
            drop(permit);
        });
    }
}

async fn serve_tcp_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    handler: SharedCatalog,
    idle_timeout: Duration,
) {
    let (dns_stream, stream_handle) = DnsTcpStream::from_stream(AsyncIoTokioAsStd(stream), peer);
    let mut messages = TimeoutStream::new(dns_stream, idle_timeout);
    while let Some(message) = messages.next().await {
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                debug!(%peer, %error, "DNS: TCP connection closed");
                return;
            }
        };
        let (bytes, src) = message.into_parts();
        let mut response = ResponseHandle::new(src, stream_handle.clone(), Protocol::Tcp);
        let Ok(header) = Header::read(&mut BinDecoder::new(&bytes)) else {
            debug!(%peer, "DNS: TCP message without a header, closing");
            return;
        };
        if header.metadata.message_type == MessageType::Response {
            continue;
        }
        match Request::from_bytes(bytes, src, Protocol::Tcp) {
            Ok(request) => {
                handler
                    .handle_request::<_, TokioTime>(&request, response)
                    .await;
            }
            Err(error) => {
                debug!(%peer, %error, "DNS: malformed query over TCP, answering FORMERR");
                if let Err(error) = form_error(&header, &mut response).await {
                    debug!(%peer, %error, "DNS: cannot answer over TCP");
                    return;
                }
            }
        }
    }
}
