//! Serving a test server's routes on a loopback port until its handle is dropped.

use std::net::SocketAddr;

use tokio::sync::oneshot;

/// Serves `app` on `addr` (port 0: a free one) in the background; returns the bound
/// address and the sender whose drop stops the server gracefully.
pub(crate) async fn spawn(
    app: axum::Router,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
    });
    Ok((addr, stop))
}
