//! Serving of the asset mirror's files on the plain-HTTP machine listener without hyper:
//! a large file by `sendfile(2)` from the file to the socket (zero-copy, as nginx
//! does), a small one read and sent in the same write as the response head.
//!
//! hyper cannot hand its socket to `sendfile`, so the connection is first read here: a
//! small HTTP/1.1 request-head parser ([`parse_head`], `httparse`, the parser hyper
//! uses), bounded by the header size hyper is given and by the header timeout. A
//! `GET`/`HEAD` for a plain mirror path (not a route of its own, not `/api/`,
//! [`crate::machine::routed_elsewhere`]) that resolves ([`files::resolve`]) to a file
//! is answered here: the head from [`files::plan`] (the same statuses and headers as
//! the hyper path: Range, If-Range, ETag, If-None-Match, If-Modified-Since), a body of
//! at most [`INLINE_MAX`] bytes read into the head's buffer and sent with it, a longer
//! one by `sendfile` driven by the socket's writability. A reader that takes no byte
//! for the idle timeout is dropped; on keep-alive the next request goes through the
//! same check. (Every mirror file, not only the large ones: handing a request to hyper
//! costs a hyper connection of its own, which halved small-file requests per second.)
//!
//! Any other request is handed to hyper, one at a time: hyper gets the request's bytes
//! (the head already read, then exactly its `Content-Length` body from the socket), and
//! once its response is dropped and flushed, an end of file on which it stops without
//! closing the socket ([`OneRequest`], `without_shutdown`); the connection then comes
//! back here for the next request, so a machine that fetches its iPXE script and then
//! its kernel on one connection gets the kernel with `sendfile`. A request whose end or
//! aftermath this parser does not follow (HTTP/1.0, a chunked body, `Connection: close`,
//! `Upgrade`, `Expect`, a head `httparse` refuses or one over the size cap) is handed to
//! hyper with the bytes already read replayed first ([`Prefixed`]), and hyper keeps the
//! connection to its end.
//!
//! The mirror route records nothing (no audit, no metric, no log line per request), so
//! answering here loses nothing. Reading a file not in the page cache blocks the
//! runtime thread inside `sendfile`, as nginx without `aio` does.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker, ready};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tower::ServiceExt as _;

use crate::bounded::{IdleTimeout, Limits, http1_builder, serve_connection, with_peer};
use crate::files;

/// Bodies (a whole file or the range asked for) of at most this many bytes are read
/// into the response head's buffer and go out in one write; longer ones with
/// `sendfile`, the head sent with `MSG_MORE` so that it leaves with the first bytes.
pub const INLINE_MAX: u64 = 64 * 1024;

/// Headers in a request head at most, as hyper's default; more and the request goes
/// to hyper, which refuses it.
const MAX_HEADERS: usize = 100;

/// Bytes handed to one `sendfile` call at most: the loop yields to the runtime between
/// calls, so a fast reader cannot hold a worker thread for long.
const SENDFILE_CHUNK: usize = 4 * 1024 * 1024;

/// Where the zero-copy path finds the asset mirror: asked per request, so a reloaded
/// configuration is in force at once, as on the hyper path.
#[derive(Clone)]
pub struct MirrorFiles {
    dir: Arc<dyn Fn() -> Option<PathBuf> + Send + Sync>,
}

impl MirrorFiles {
    /// The mirror is whatever directory `dir` answers when a request arrives (`None`:
    /// no mirror, every request goes to the router).
    pub fn new(dir: impl Fn() -> Option<PathBuf> + Send + Sync + 'static) -> Self {
        MirrorFiles { dir: Arc::new(dir) }
    }
}

/// A request the zero-copy path may answer, if it names a mirror file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRequest {
    /// The decoded URL path.
    pub path: String,
    /// `HEAD`: the head only.
    pub head_only: bool,
    /// The connection stays open after the answer (HTTP/1.1 without `Connection: close`).
    pub keep_alive: bool,
    /// The request's headers (for the conditional and range ones).
    pub headers: HeaderMap,
}

/// What the bytes read so far on a connection are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    /// Not a whole request head yet, and under the size cap: read more.
    Incomplete,
    /// For hyper, to the end of the connection: not well formed, too large, or a
    /// request whose end or aftermath this parser does not follow (HTTP/1.0, a chunked
    /// body, `Connection: close`, `Upgrade`, `Expect`, `CONNECT`).
    Hyper,
    /// For hyper, one request (head and body) of `len` bytes; the connection comes back
    /// here once its answer is sent.
    HyperOnce {
        /// The request's head and body length in bytes.
        len: u64,
    },
    /// A mirror file request whose head is the first `head_len` bytes.
    File {
        /// The request.
        request: FileRequest,
        /// Its head's length in bytes.
        head_len: usize,
    },
}

/// Reads the request head at the start of `buf` (at most `max_head` bytes of head),
/// and says whether the zero-copy path may answer it. Pure.
pub(crate) fn parse_head(buf: &[u8], max_head: usize) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Partial) if buf.len() < max_head => return Head::Incomplete,
        _ => return Head::Hyper,
    };
    if let Some(request) = file_request(&req) {
        return Head::File { request, head_len };
    }
    match hyper_once_len(&req, head_len) {
        Some(len) => Head::HyperOnce { len },
        None => Head::Hyper,
    }
}

/// The length of a request hyper can answer and hand the connection back after (its
/// head and its `Content-Length` body), or `None` when hyper should keep the
/// connection (see [`Head::Hyper`]).
fn hyper_once_len(req: &httparse::Request<'_, '_>, head_len: usize) -> Option<u64> {
    if req.version? != 1 || req.method? == "CONNECT" {
        return None;
    }
    let mut body_len = 0u64;
    let mut lengths = 0;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return None;
        }
        if name.eq_ignore_ascii_case("connection") {
            let value = std::str::from_utf8(h.value).ok()?;
            if value.split(',').any(|t| {
                ["close", "upgrade"]
                    .iter()
                    .any(|c| t.trim().eq_ignore_ascii_case(c))
            }) {
                return None;
            }
        }
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(h.value).ok()?.trim();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            body_len = value.parse().ok()?;
            lengths += 1;
        }
    }
    if lengths > 1 {
        return None;
    }
    u64::try_from(head_len).ok()?.checked_add(body_len)
}

/// A parsed request as a [`FileRequest`], or `None` when hyper should answer it:
/// another method or version, a target not in origin form, a path the router answers
/// itself, a body, `Expect` or `Upgrade`, a header hyper would refuse.
fn file_request(req: &httparse::Request<'_, '_>) -> Option<FileRequest> {
    let head_only = match req.method? {
        "GET" => false,
        "HEAD" => true,
        _ => return None,
    };
    if req.version? != 1 {
        return None;
    }
    let target = req.path?;
    if !target.starts_with('/') {
        return None;
    }
    let uri: Uri = target.parse().ok()?;
    let raw_path = uri.path();
    let path = crate::percent_decode(raw_path)?;
    if crate::machine::routed_elsewhere(raw_path) || crate::machine::routed_elsewhere(&path) {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        headers.append(name, value);
    }
    let unsupported = [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::EXPECT,
        header::UPGRADE,
    ];
    if unsupported.iter().any(|h| headers.contains_key(h)) {
        return None;
    }
    let close = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("close"));
    Some(FileRequest {
        path,
        head_only,
        keep_alive: !close,
        headers,
    })
}

/// The response head for `plan`, as hyper writes it for the same response: the plan's
/// headers, `content-length: 0` for an empty 416, `connection: close` when the
/// connection ends after it, and `date`. Pure.
pub(crate) fn response_head(plan: &files::Plan, keep_alive: bool, now: SystemTime) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(plan.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        plan.status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    let mut line = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in &plan.headers {
        line(name.as_str().as_bytes(), value.as_bytes());
    }
    if plan.status == StatusCode::RANGE_NOT_SATISFIABLE
        && !plan.headers.contains_key(header::CONTENT_LENGTH)
    {
        line(b"content-length", b"0");
    }
    if !keep_alive {
        line(b"connection", b"close");
    }
    line(b"date", httpdate::fmt_http_date(now).as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// A mirror file open for the zero-copy path.
struct MirrorFile {
    file: std::fs::File,
    path: PathBuf,
    len: u64,
    modified: SystemTime,
}

/// Opens the mirror file for `url_path`; `None` for anything else (hyper answers it,
/// 404s included). The file is the one the hyper path serves ([`files::resolve`]: no
/// way out of the mirror): a path without symbolic links is opened in one `openat2`
/// beneath the mirror's directory (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: the kernel
/// refuses `..` and links, so nothing outside can be reached); one with a link, or a
/// kernel without `openat2`, goes through `files::resolve` (two `canonicalize`s,
/// a dozen system calls), as before.
fn open_file(root: &Path, url_path: &str) -> Option<MirrorFile> {
    let rel = url_path.trim_start_matches('/');
    let (file, path) = match open_beneath(root, rel) {
        Ok(file) => (file, root.join(rel)),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV | rustix::io::Errno::NOSYS) => {
            let path = files::resolve(root, url_path)?;
            (std::fs::File::open(&path).ok()?, path)
        }
        Err(_) => return None,
    };
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    Some(MirrorFile {
        file,
        path,
        len: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    })
}

/// `rel` opened read-only beneath `root`, following no symbolic link (`ELOOP` when
/// one is on the way, `EXDEV` for `..` or an absolute path).
fn open_beneath(root: &Path, rel: &str) -> rustix::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    // As `files::resolve`: a backslash or NUL names no mirror file.
    if rel.is_empty() || rel.contains(['\0', '\\']) {
        return Err(rustix::io::Errno::NOENT);
    }
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let fd = rustix::fs::openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(std::fs::File::from(fd))
}

/// Serves one plain-HTTP connection of the machine listener: mirror files itself
/// (`sendfile` beyond [`INLINE_MAX`]), anything else by `app` through hyper, all
/// within `limits` (header timeout per request head, idle timeout while sending, the
/// head no larger than hyper's buffer). After a request hyper answered, the connection
/// comes back here when hyper can hand it back ([`Head::HyperOnce`]), so the next request
/// gets the same check.
pub(crate) async fn serve_plain(
    mut stream: TcpStream,
    app: Router,
    limits: &Limits,
    peer: SocketAddr,
    mirror: &MirrorFiles,
) {
    let max_head = limits.max_buffer.max(8192);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head = tokio::time::timeout(
            limits.header_timeout,
            read_head(&mut stream, &mut buf, max_head),
        )
        .await;
        let head = match head {
            Err(_) => {
                tracing::debug!(peer = %peer, "HTTP: no request head within the header timeout");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(peer = %peer, "HTTP connection ended: {e}");
                return;
            }
            Ok(Ok(None)) => return,
            Ok(Ok(Some(head))) => head,
        };
        let once = match head {
            Head::File { request, head_len } => {
                let file = (mirror.dir)().and_then(|root| open_file(&root, &request.path));
                match file {
                    None => request.keep_alive.then_some(head_len as u64),
                    Some(file) => {
                        // A file request has no body: its head is all of it.
                        buf.drain(..head_len);
                        match send_file(&mut stream, &request, &file, limits).await {
                            Ok(()) if request.keep_alive => continue,
                            Ok(()) => return,
                            Err(e) => {
                                tracing::debug!(peer = %peer, "HTTP: zero-copy send ended: {e}");
                                return;
                            }
                        }
                    }
                }
            }
            Head::HyperOnce { len } => Some(len),
            Head::Hyper | Head::Incomplete => None,
        };
        let Some(len) = once else { break };
        match serve_once(stream, buf, len, &app, limits, peer).await {
            Some((back, rest)) => (stream, buf) = (back, rest),
            None => return,
        }
    }
    let io = IdleTimeout::new(Prefixed::new(buf, stream), limits.idle_timeout);
    serve_connection(io, app, limits, peer).await;
}

/// Has hyper answer the request of `len` bytes at the start of `buf` (its body's rest
/// read from the socket) with `app`, then takes the connection back: the socket and
/// the bytes read past the request. `None` when the connection ended (an error, or
/// hyper chose to close it).
async fn serve_once(
    stream: TcpStream,
    mut buf: Vec<u8>,
    len: u64,
    app: &Router,
    limits: &Limits,
    peer: SocketAddr,
) -> Option<(TcpStream, Vec<u8>)> {
    let in_buf = usize::try_from(len).map_or(buf.len(), |n| n.min(buf.len()));
    let rest = buf.split_off(in_buf);
    let from_socket = len - in_buf as u64;
    let done = Arc::new(AtomicBool::new(false));
    let io = OneRequest::new(buf, from_socket, stream, done.clone());
    let io = IdleTimeout::new(io, limits.idle_timeout);
    let service = with_peer(app.clone(), peer).map_response(move |response: Response| {
        let done = done.clone();
        response.map(|inner| Body::new(SignalOnDrop { inner, done }))
    });
    let served = http1_builder(limits)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .without_shutdown()
        .await;
    let parts = match served {
        Ok(parts) => parts,
        Err(e) => {
            tracing::debug!(peer = %peer, "HTTP connection ended: {e}");
            return None;
        }
    };
    let (stream, handed_back) = parts.io.into_inner().into_inner().into_parts();
    if !handed_back {
        // hyper ended the connection itself (it answered `Connection: close`).
        return None;
    }
    let mut next = parts.read_buf.to_vec();
    next.extend_from_slice(&rest);
    Some((stream, next))
}

/// Reads into `buf` until it starts with a whole request head (or with `max_head`
/// bytes that are not one, or with anything the zero-copy path does not answer);
/// `None` when the client closed first.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    max_head: usize,
) -> io::Result<Option<Head>> {
    loop {
        if !buf.is_empty() {
            match parse_head(buf, max_head) {
                Head::Incomplete => {}
                head => return Ok(Some(head)),
            }
        }
        // parse_head answers Hyper once max_head bytes are in: room is never 0.
        let room = max_head.saturating_sub(buf.len()).max(1);
        buf.reserve(room);
        let n = (&mut *stream).take(room as u64).read_buf(buf).await?;
        if n == 0 {
            return Ok(None);
        }
    }
}

/// Answers `request` for `file`: the head as the hyper path would, then the body
/// (unless `HEAD`, 304 or 416): read into the head's buffer when it is at most
/// [`INLINE_MAX`] bytes, else with `sendfile`. Fails once the client took no byte for
/// the idle timeout.
async fn send_file(
    stream: &mut TcpStream,
    request: &FileRequest,
    file: &MirrorFile,
    limits: &Limits,
) -> io::Result<()> {
    let plan = files::plan(&file.path, file.len, file.modified, &request.headers);
    let mut head = response_head(&plan, request.keep_alive, SystemTime::now());
    let body = plan.body.filter(|_| !request.head_only);
    let (start, count) = match body {
        Some((start, count)) if count > INLINE_MAX => (start, count),
        small => {
            if let Some((start, count)) = small {
                read_at(&file.file, start, count, &mut head)?;
            }
            return tokio::time::timeout(limits.idle_timeout, stream.write_all(&head))
                .await
                .map_err(|_| idle_error())?;
        }
    };
    tokio::time::timeout(limits.idle_timeout, send_more(stream, &head))
        .await
        .map_err(|_| idle_error())??;
    let mut offset = start;
    let end = start.saturating_add(count);
    while offset < end {
        let want = usize::try_from(end - offset).map_or(SENDFILE_CHUNK, |n| n.min(SENDFILE_CHUNK));
        let sent = tokio::time::timeout(
            limits.idle_timeout,
            stream.async_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&*stream, &file.file, Some(&mut offset), want)
                    .map_err(io::Error::from)
            }),
        )
        .await
        .map_err(|_| idle_error())??;
        if sent == 0 {
            // The file shrank since it was opened: the length announced cannot be met.
            return Err(shrank());
        }
        tokio::task::coop::consume_budget().await;
    }
    Ok(())
}

/// Appends the `count` bytes of `file` from `start` to `out` (a file that shrank since
/// it was opened is an error: the length announced cannot be met).
fn read_at(file: &std::fs::File, start: u64, count: u64, out: &mut Vec<u8>) -> io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let count = usize::try_from(count).map_err(|_| shrank())?;
    let at = out.len();
    out.resize(at + count, 0);
    file.read_exact_at(&mut out[at..], start).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            shrank()
        } else {
            e
        }
    })
}

/// Writes all of `bytes` with `MSG_MORE`: the kernel holds a partial segment back for
/// the bytes that follow (the body `sendfile` sends), as nginx's `tcp_nopush` does.
async fn send_more(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let sent = stream
            .async_io(Interest::WRITABLE, || {
                rustix::net::send(stream, bytes, rustix::net::SendFlags::MORE)
                    .map_err(io::Error::from)
            })
            .await?;
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[sent..];
    }
    Ok(())
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while being sent",
    )
}

fn idle_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "no progress within the idle timeout",
    )
}

/// A response body that marks `done` when hyper drops it: hyper has encoded the whole
/// response (or given up on it).
struct SignalOnDrop {
    inner: Body,
    done: Arc<AtomicBool>,
}

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

impl http_body::Body for SignalOnDrop {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The IO hyper gets for one request: `request` (what was read of it), then at most
/// `from_socket` more bytes from `inner` (the rest of its body), then nothing until
/// the response is done and flushed, then end of file, on which hyper ends the
/// connection without closing the socket. Writes go to `inner`. hyper never sees the
/// next request's bytes.
struct OneRequest<T> {
    request: Prefixed<()>,
    from_socket: u64,
    inner: T,
    done: Arc<AtomicBool>,
    flushed: bool,
    handed_back: bool,
    reader: Option<Waker>,
}

impl<T> OneRequest<T> {
    fn new(request: Vec<u8>, from_socket: u64, inner: T, done: Arc<AtomicBool>) -> Self {
        OneRequest {
            request: Prefixed::new(request, ()),
            from_socket,
            inner,
            done,
            flushed: false,
            handed_back: false,
            reader: None,
        }
    }

    /// The socket, and whether hyper was handed the end of file (so it stopped at the
    /// end of the request, not because it chose to close).
    fn into_parts(self) -> (T, bool) {
        (self.inner, self.handed_back)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for OneRequest<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.request.take_into(buf) {
            return Poll::Ready(Ok(()));
        }
        if this.from_socket > 0 {
            let mut chunk = [0u8; 8192];
            let want = usize::try_from(this.from_socket)
                .map_or(chunk.len(), |n| n.min(chunk.len()))
                .min(buf.remaining());
            let mut part = ReadBuf::new(&mut chunk[..want]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut part))?;
            let got = part.filled();
            buf.put_slice(got);
            this.from_socket = this.from_socket.saturating_sub(got.len() as u64);
            if got.is_empty() {
                // The client closed within the body: hyper reports it.
                this.from_socket = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if this.flushed {
            this.handed_back = true;
            return Poll::Ready(Ok(()));
        }
        this.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for OneRequest<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// hyper flushes its IO only once its own buffer is written out: a flush after the
    /// body was dropped means the whole response is in the socket.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done_before = this.done.load(Ordering::Acquire);
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        if done_before && !this.flushed {
            this.flushed = true;
            if let Some(reader) = this.reader.take() {
                reader.wake();
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// An IO that reads `prefix` first, then `inner`; writes go to `inner`. Hands hyper a
/// connection whose first bytes were already read (at most one request head's worth).
pub(crate) struct Prefixed<T> {
    prefix: Vec<u8>,
    read: usize,
    inner: T,
}

impl<T> Prefixed<T> {
    /// Reads `prefix`, then `inner`.
    pub(crate) fn new(prefix: Vec<u8>, inner: T) -> Self {
        Prefixed {
            prefix,
            read: 0,
            inner,
        }
    }

    /// Moves what `buf` takes of the prefix not read yet into it; `false` when the
    /// prefix was all read (or `buf` is full).
    fn take_into(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let Some(rest) = self.prefix.get(self.read..) else {
            return false;
        };
        let n = rest.len().min(buf.remaining());
        if n == 0 {
            return false;
        }
        buf.put_slice(&rest[..n]);
        self.read += n;
        if self.read == self.prefix.len() {
            self.prefix = Vec::new();
            self.read = 0;
        }
        true
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.take_into(buf) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(head: &str) -> FileRequest {
        match parse_head(head.as_bytes(), 8192) {
            Head::File { request, head_len } => {
                assert_eq!(head_len, head.len());
                request
            }
            other => panic!("{head:?}: {other:?}"),
        }
    }

    #[test]
    fn plain_mirror_gets_and_heads_are_file_requests() {
        let r = file("GET /flatcar/a%20b.bin?x=1 HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\n\r\n");
        assert_eq!(r.path, "/flatcar/a b.bin");
        assert!(!r.head_only && r.keep_alive);
        assert_eq!(
            r.headers.get(header::RANGE).map(|v| v.as_bytes()),
            Some(&b"bytes=0-9"[..])
        );
        let r = file("HEAD /a.iso HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n");
        assert!(r.head_only && !r.keep_alive);
    }

    #[test]
    fn pipelined_bytes_are_not_part_of_the_head() {
        let two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        match parse_head(two.as_bytes(), 8192) {
            Head::File { head_len, .. } => assert_eq!(head_len, two.len() / 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_requests_go_to_hyper_once_and_come_back() {
        for (head, body) in [
            (
                "POST /report/a/b/ready HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                5,
            ),
            ("POST /report/a/b/ready HTTP/1.1\r\n\r\n", 0),
            ("GET /api/v1/nodes HTTP/1.1\r\n\r\n", 0),
            ("GET /%61pi/v1/nodes HTTP/1.1\r\n\r\n", 0),
            ("GET /boot/ipxe.efi HTTP/1.1\r\n\r\n", 0),
            (
                "GET /ipxe/52-54-00-12-34-56.ipxe HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
                0,
            ),
            ("GET http://h/a.iso HTTP/1.1\r\n\r\n", 0),
            ("GET * HTTP/1.1\r\n\r\n", 0),
            ("GET /a%zz HTTP/1.1\r\n\r\n", 0),
            ("GET /a.iso HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 5),
        ] {
            let len = (head.len() + body) as u64;
            assert_eq!(
                parse_head(head.as_bytes(), 8192),
                Head::HyperOnce { len },
                "{head:?}"
            );
        }
    }

    #[test]
    fn requests_whose_end_is_not_followed_leave_the_connection_to_hyper() {
        for head in [
            "GET /a.iso HTTP/1.0\r\n\r\n",
            "GET /api/x HTTP/1.0\r\n\r\n",
            "GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n",
            "POST /report/a/b/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /report/a/b/c HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST /report/a/b/c HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "GET /a.iso HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /a.iso HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "CONNECT h:443 HTTP/1.1\r\n\r\n",
            "GET /a.iso HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "\x16\x03\x01\x02\x00",
        ] {
            assert_eq!(parse_head(head.as_bytes(), 8192), Head::Hyper, "{head:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        let head = format!("GET /a.iso HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_head(head.as_bytes(), 1 << 20),
            Head::Hyper,
            "too many headers"
        );
    }

    #[test]
    fn heads_are_bounded() {
        let partial = b"GET /a.iso HTTP/1.1\r\nHost: t\r\n";
        assert_eq!(parse_head(partial, 8192), Head::Incomplete);
        assert_eq!(
            parse_head(partial, partial.len()),
            Head::Hyper,
            "at the cap"
        );
        let long = format!("GET /a.iso HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(9000));
        assert_eq!(
            parse_head(long.as_bytes(), 8192),
            Head::Hyper,
            "over the cap"
        );
    }

    #[test]
    fn response_heads_say_what_hyper_would() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=-100"));
        let modified = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let plan = files::plan(Path::new("a.iso"), 4096, modified, &headers);
        let head = String::from_utf8(response_head(&plan, true, modified)).unwrap_or_default();
        assert!(
            head.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\ncontent-range: bytes 3996-4095/4096\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\ncontent-length: 100\r\n"), "{head}");
        assert!(
            head.contains("\r\ndate: Tue, 14 Nov 2023 22:13:20 GMT\r\n"),
            "{head}"
        );
        assert!(!head.contains("connection"), "{head}");
        assert!(head.ends_with("\r\n\r\n"));

        headers.insert(header::RANGE, HeaderValue::from_static("bytes=5000-"));
        let plan = files::plan(Path::new("a.iso"), 4096, modified, &headers);
        let head = String::from_utf8(response_head(&plan, false, modified)).unwrap_or_default();
        assert!(
            head.starts_with("HTTP/1.1 416 Range Not Satisfiable\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\ncontent-range: bytes */4096\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\ncontent-length: 0\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert_eq!(plan.body, None);
    }
}
