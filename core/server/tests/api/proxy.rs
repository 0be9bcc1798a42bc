//! A fault-injecting TCP proxy on loopback, between a device's sync engine
//! and the endpoint, or between the endpoint and its PostgreSQL. Every
//! connection opened while a fault is armed gets that fault; the recovering
//! sync goes to the endpoint directly. Closed, it cuts every connection and
//! refuses new ones: what lies behind it can no longer be reached.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What happens to the next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Forward the first `n` bytes (request bytes first, then response
    /// bytes), then close both sides.
    CutAfter(usize),
    /// Forward the request; throw the response away and close.
    DropResponse,
    /// Forward the request; hold the response back this long.
    DelayResponse(Duration),
}

/// The proxy; bytes forwarded on the latest connection are counted.
pub struct Proxy {
    pub addr: SocketAddr,
    next: Arc<Mutex<Fault>>,
    pub last_request_bytes: Arc<AtomicUsize>,
    pub last_response_bytes: Arc<AtomicUsize>,
    closed: watch::Sender<bool>,
}

/// Completes once the proxy is closed (never, if it is dropped unclosed).
async fn until_closed(mut closed: watch::Receiver<bool>) {
    if closed.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let next = Arc::new(Mutex::new(Fault::None));
        let req = Arc::new(AtomicUsize::new(0));
        let resp = Arc::new(AtomicUsize::new(0));
        let (closed, on_close) = watch::channel(false);
        let (n, rq, rs) = (Arc::clone(&next), Arc::clone(&req), Arc::clone(&resp));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = until_closed(on_close.clone()) => return,
                };
                let Ok((client, _)) = accepted else {
                    return;
                };
                let fault = *n.lock().unwrap();
                let (rq, rs) = (Arc::clone(&rq), Arc::clone(&rs));
                let on_close = on_close.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        tokio::select! {
                            () = relay(client, server, fault, rq, rs) => {}
                            () = until_closed(on_close) => {}
                        }
                    }
                });
            }
        });
        Self {
            addr,
            next,
            last_request_bytes: req,
            last_response_bytes: resp,
            closed,
        }
    }

    /// Cuts every connection and stops listening, so new ones are refused.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Sets the fault for connections opened from now on.
    pub fn arm(&self, fault: Fault) {
        *self.next.lock().unwrap() = fault;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    fault: Fault,
    req_bytes: Arc<AtomicUsize>,
    resp_bytes: Arc<AtomicUsize>,
) {
    let budget = Arc::new(AtomicUsize::new(match fault {
        Fault::CutAfter(n) => n,
        _ => usize::MAX,
    }));
    req_bytes.store(0, Ordering::SeqCst);
    resp_bytes.store(0, Ordering::SeqCst);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up_budget = Arc::clone(&budget);
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let allowed = take(&up_budget, n);
            if allowed > 0 && sw.write_all(&buf[..allowed]).await.is_err() {
                return;
            }
            req_bytes.fetch_add(allowed, Ordering::SeqCst);
            if allowed < n {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut first = true;
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            match fault {
                Fault::DropResponse => return,
                Fault::DelayResponse(d) if first => tokio::time::sleep(d).await,
                _ => {}
            }
            first = false;
            let allowed = take(&budget, n);
            if allowed > 0 && cw.write_all(&buf[..allowed]).await.is_err() {
                return;
            }
            resp_bytes.fetch_add(allowed, Ordering::SeqCst);
            if allowed < n {
                return;
            }
        }
    };
    // When either direction ends, both sockets are dropped: the cut.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Takes up to `n` bytes from the budget; returns how many may be forwarded.
fn take(budget: &AtomicUsize, n: usize) -> usize {
    let mut allowed = 0;
    let _ = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
        allowed = left.min(n);
        Some(left - allowed)
    });
    allowed
}
