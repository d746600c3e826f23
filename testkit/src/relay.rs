//! A TCP relay between a function and PostgreSQL that can go silent on demand, the way a
//! database host does in a failover or when a NAT or ENI flow expires: the sockets stay open,
//! nothing arrives, nothing is refused. [`Relay::silence`] turns every open connection silent
//! for good (and new ones while it lasts); [`Relay::restore`] lets new connections through
//! again, while the silenced ones stay silent, as a lost flow does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running relay; stops when dropped.
pub struct Relay {
    /// The port to connect to instead of the database's.
    pub port: u16,
    silent: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays 127.0.0.1:<port> to `target` (host:port).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let silent = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let (s, c) = (silent.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let dead = Arc::new(AtomicBool::new(s.load(Ordering::SeqCst)));
                c.lock().expect("relay list").push(dead.clone());
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, dead.clone()), pump(sr, cw, dead));
                });
            }
        });
        Self { port, silent, conns, task }
    }

    /// Every open connection stops passing data, for good; new ones pass nothing either until
    /// [`Relay::restore`].
    pub fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
        for c in self.conns.lock().expect("relay list").iter() {
            c.store(true, Ordering::SeqCst);
        }
    }

    /// New connections pass data again; the silenced ones stay silent.
    pub fn restore(&self) {
        self.silent.store(false, Ordering::SeqCst);
    }

    /// How many connections have been made through the relay.
    pub fn connections(&self) -> usize {
        self.conns.lock().expect("relay list").len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either end closes; once `dead`, reads are swallowed (the
/// socket stays open and is drained, so the sender sees no error and no answer).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dead: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if !dead.load(Ordering::SeqCst) {
                    let _ = to.shutdown().await;
                }
                return;
            }
            Ok(n) => n,
        };
        if dead.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
