//! A loopback TCP proxy whose traffic a test can cut and restore.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::db::UrlParts;

/// The MySQL port used when a URL names none.
const MYSQL_DEFAULT_PORT: u16 = 3306;

/// A TCP proxy on `127.0.0.1` that forwards every connection to one upstream address, so that a
/// test can make a dependency "go down" ([`TcpProxy::cut`]) and "come back"
/// ([`TcpProxy::restore`]) on the same address without touching the shared server.
///
/// While cut, the proxy keeps its port (so nothing else can take it) but closes each new
/// connection as soon as it is accepted: clients see their connection closed before the server
/// says anything, as if it had crashed. Dropping the proxy closes everything.
///
/// Must be created inside a Tokio runtime; its tasks run on that runtime.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Mutex<State>>,
    accept_task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct State {
    cut: bool,
    next_id: u64,
    /// The forwarding task of each live connection.
    connections: HashMap<u64, JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state stays consistent across a panic (there is none while it is held): carry on.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TcpProxy {
    /// Binds `127.0.0.1:0` and starts forwarding each accepted connection to `upstream`.
    ///
    /// A connection whose upstream cannot be reached is closed.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the proxy on 127.0.0.1")?;
        let addr = listener.local_addr().context("the proxy's address")?;
        let shared = Arc::new(Mutex::new(State::default()));
        let accept_task = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&shared)));
        Ok(Self {
            addr,
            upstream,
            shared,
            accept_task,
        })
    }

    /// The address clients connect to (`127.0.0.1:<port>`), the same for the proxy's life.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Closes every live connection and makes the proxy close new ones at once, until
    /// [`TcpProxy::restore`]. When this returns, every connection's sockets are closed.
    pub async fn cut(&self) {
        let tasks: Vec<_> = {
            let mut state = lock(&self.shared);
            state.cut = true;
            state.connections.drain().map(|(_, task)| task).collect()
        };
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Resolves once the task's future, and with it both sockets, has been dropped.
            let _ = task.await;
        }
    }

    /// Forwards new connections again, on the same address. Connections closed by
    /// [`TcpProxy::cut`] stay closed: clients must reconnect.
    pub fn restore(&self) {
        lock(&self.shared).cut = false;
    }

    /// Whether the proxy is cut.
    pub fn is_cut(&self) -> bool {
        lock(&self.shared).cut
    }

    /// How many connections are being forwarded now.
    pub fn live_connections(&self) -> usize {
        lock(&self.shared).connections.len()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        for (_, task) in lock(&self.shared).connections.drain() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Mutex<State>>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Per-connection failures (a client gone before accept, no file descriptors
            // left): let the runtime breathe and go on.
            Err(_) => {
                tokio::task::yield_now().await;
                continue;
            }
        };
        let mut state = lock(&shared);
        if state.cut {
            drop(client);
            continue;
        }
        let id = state.next_id;
        state.next_id += 1;
        let shared = Arc::clone(&shared);
        // Registered under the lock the task needs to deregister itself: it cannot finish
        // being forgotten before it is remembered.
        let task = tokio::spawn(async move {
            forward(client, upstream).await;
            lock(&shared).connections.remove(&id);
        });
        state.connections.insert(id, task);
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// Returns `url` (a `mysql://` URL) with its `host:port` replaced by the proxy's address,
/// keeping user, password, database and parameters.
///
/// # Panics
///
/// If `url` has no `scheme://host` part.
pub fn mysql_url_via(proxy: &TcpProxy, url: &str) -> String {
    match UrlParts::parse(url) {
        Ok(parts) => parts.with_host_port(&proxy.addr().to_string()),
        Err(e) => panic!("mysql_url_via: {e:#}"),
    }
}

/// The socket address a `mysql://` URL points at (port 3306 if it names none; an IPv4
/// address preferred when the host resolves to several), e.g. the upstream of a [`TcpProxy`].
pub fn mysql_socket_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let host_port = UrlParts::parse(url)?.host_port;
    let (host, port) = match host_port.rsplit_once(':') {
        // `[::1]:3306` or `host:3306`, but not a bare `[::1]`.
        Some((host, port)) if !port.ends_with(']') => {
            let port = port
                .parse()
                .with_context(|| format!("bad port in {host_port:?}"))?;
            (host, port)
        }
        _ => (host_port, MYSQL_DEFAULT_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host_port}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .with_context(|| format!("{host_port} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Bounds every network wait, so that a broken proxy fails the test instead of hanging it.
    const WAIT: Duration = Duration::from_secs(10);

    async fn echo_server() -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Ok(addr)
    }

    async fn echo_round_trip(stream: &mut TcpStream, msg: &[u8]) -> anyhow::Result<()> {
        stream.write_all(msg).await?;
        let mut buf = vec![0; msg.len()];
        tokio::time::timeout(WAIT, stream.read_exact(&mut buf)).await??;
        assert_eq!(buf, msg);
        Ok(())
    }

    /// Whether the peer closes (or resets) `stream` without sending anything.
    async fn is_closed(stream: &mut TcpStream) -> anyhow::Result<bool> {
        // The write may fail (reset) or succeed (data in flight); only the read decides.
        let _ = stream.write_all(b"anyone?").await;
        let mut buf = [0; 16];
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Ok(true),
            Ok(Ok(n)) => anyhow::bail!("got {n} bytes through a cut proxy"),
            Err(_) => Ok(false),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forwards_cuts_and_restores_on_the_same_port() -> anyhow::Result<()> {
        let echo = echo_server().await?;
        let proxy = TcpProxy::start(echo).await?;
        let addr = proxy.addr();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr, echo);

        let mut live = TcpStream::connect(addr).await?;
        echo_round_trip(&mut live, b"hello").await?;
        let mut other = TcpStream::connect(addr).await?;
        echo_round_trip(&mut other, b"world").await?;
        assert_eq!(proxy.live_connections(), 2);

        proxy.cut().await;
        assert!(proxy.is_cut());
        assert_eq!(proxy.live_connections(), 0);
        assert!(
            is_closed(&mut live).await?,
            "a live connection survived the cut"
        );
        assert!(
            is_closed(&mut other).await?,
            "a live connection survived the cut"
        );
        // New connections either fail or are closed at once.
        if let Ok(mut fresh) = TcpStream::connect(addr).await {
            assert!(
                is_closed(&mut fresh).await?,
                "a new connection went through a cut proxy"
            );
        }
        assert_eq!(proxy.live_connections(), 0);

        proxy.restore();
        assert!(!proxy.is_cut());
        assert_eq!(proxy.addr(), addr);
        let mut again = TcpStream::connect(addr).await?;
        echo_round_trip(&mut again, b"back again").await?;

        // A connection ending on its own is forgotten.
        drop(again);
        tokio::time::timeout(WAIT, async {
            while proxy.live_connections() != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await?;
        Ok(())
    }

    #[tokio::test]
    async fn unreachable_upstream_closes_the_client() -> anyhow::Result<()> {
        // A port nothing listens on: bind one, then free it.
        let closed = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        let proxy = TcpProxy::start(closed).await?;
        let mut client = TcpStream::connect(proxy.addr()).await?;
        assert!(is_closed(&mut client).await?);
        Ok(())
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_connections() -> anyhow::Result<()> {
        let echo = echo_server().await?;
        let proxy = TcpProxy::start(echo).await?;
        let mut live = TcpStream::connect(proxy.addr()).await?;
        echo_round_trip(&mut live, b"x").await?;
        drop(proxy);
        assert!(is_closed(&mut live).await?);
        Ok(())
    }

    #[tokio::test]
    async fn urls() -> anyhow::Result<()> {
        let proxy = TcpProxy::start("127.0.0.1:9".parse()?).await?;
        let port = proxy.addr().port();
        assert_eq!(
            mysql_url_via(
                &proxy,
                "mysql://root:pw@db.example:3306/bl_test_1?ssl-mode=disabled"
            ),
            format!("mysql://root:pw@127.0.0.1:{port}/bl_test_1?ssl-mode=disabled")
        );
        assert_eq!(
            mysql_url_via(&proxy, "mysql://localhost"),
            format!("mysql://127.0.0.1:{port}")
        );

        assert_eq!(
            mysql_socket_addr("mysql://root@127.0.0.1:3307/x")?,
            "127.0.0.1:3307".parse::<SocketAddr>()?
        );
        assert_eq!(
            mysql_socket_addr("mysql://127.0.0.1")?,
            "127.0.0.1:3306".parse::<SocketAddr>()?
        );
        assert_eq!(
            mysql_socket_addr("mysql://u@[::1]:3310")?,
            "[::1]:3310".parse::<SocketAddr>()?
        );
        assert_eq!(
            mysql_socket_addr("mysql://[::1]")?,
            "[::1]:3306".parse::<SocketAddr>()?
        );
        assert!(mysql_socket_addr("mysql://localhost:3306")?
            .ip()
            .is_loopback());
        assert!(mysql_socket_addr("mysql://h:notaport").is_err());
        Ok(())
    }

    /// The use the proxy exists for: MariaDB going away under a client and coming back.
    /// Needs MariaDB (`scripts/test.sh` provides one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_goes_down_and_comes_back() -> anyhow::Result<()> {
        use sqlx::{Connection as _, MySqlConnection};

        let db = crate::TestDatabase::mysql().await?;
        let proxy = TcpProxy::start(mysql_socket_addr(db.url())?).await?;
        let url = mysql_url_via(&proxy, db.url());

        let mut conn = MySqlConnection::connect(&url).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;

        proxy.cut().await;
        let failed = tokio::time::timeout(WAIT, sqlx::query("SELECT 1").execute(&mut conn)).await?;
        assert!(failed.is_err(), "a query went through a cut proxy");
        let refused = tokio::time::timeout(WAIT, MySqlConnection::connect(&url)).await?;
        assert!(refused.is_err(), "connected through a cut proxy");

        proxy.restore();
        let mut conn = MySqlConnection::connect(&url).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await?;
        db.drop_db().await
    }
}
