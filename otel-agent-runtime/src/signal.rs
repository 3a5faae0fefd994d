//! Termination signals: what an orchestrator sends before it kills a program.
//!
//! Kubernetes, systemd and Docker stop a program with SIGTERM, and a terminal
//! with SIGINT (Ctrl-C). Their default action ends the process at once, so the
//! telemetry guard is never dropped and nothing still buffered is exported.
//! Two ways keep it: [`Telemetry::flush_on_signal`](crate::Telemetry::flush_on_signal)
//! flushes and then ends the process as the signal would have, and
//! [`shutdown_signal`] lets a program that shuts down gracefully end its main
//! work first and drop the guard itself.

use crate::error::ShutdownError;

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C; only Ctrl-C outside Unix).
/// From then on the signals no longer end the process by themselves.
///
/// ```no_run
/// # async fn serve() {}
/// #[tokio::main]
/// async fn main() -> Result<(), otel_agent_runtime::InitError> {
///     let _telemetry = otel_agent_runtime::init()?;
///     tokio::select! {
///         _ = serve() => {}
///         _ = otel_agent_runtime::shutdown_signal() => {}
///     }
///     Ok(()) // the guard drops here: everything buffered is exported
/// }
/// ```
///
/// If the signal handlers cannot be installed (no Tokio signal driver, or the
/// system refuses), this never resolves and says so once on standard error,
/// so that the program keeps running as it would without it.
pub async fn shutdown_signal() {
    let _ = received().await;
}

/// Which signal arrived, as its number; `None` when none can be waited for.
async fn received() -> Option<i32> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("otel-agent: cannot listen for SIGTERM and SIGINT ({e}); telemetry is flushed only when its guard drops");
                std::future::pending::<()>().await;
                return None;
            }
        };
        tokio::select! {
            _ = term.recv() => Some(15),
            _ = int.recv() => Some(2),
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Some(2),
            Err(e) => {
                eprintln!("otel-agent: cannot listen for Ctrl-C ({e}); telemetry is flushed only when its guard drops");
                std::future::pending::<()>().await;
                None
            }
        }
    }
}

/// Starts the thread that waits for a signal, shuts the telemetry down and
/// ends the process with status 128 + the signal's number.
pub(crate) fn exit_after_flush(
    close: impl FnOnce() -> Result<(), ShutdownError> + Send + 'static,
) -> std::io::Result<()> {
    // The handlers are installed before this returns, so a signal that comes
    // right after `flush_on_signal()` is already ours.
    let (ready, installed) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("otel-agent-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let signal = runtime.block_on(async {
                let waiting = received();
                tokio::pin!(waiting);
                // One poll registers the handlers.
                let first = futures_poll_once(waiting.as_mut()).await;
                let _ = ready.send(Ok(()));
                match first {
                    Some(signal) => signal,
                    None => waiting.await,
                }
            });
            let Some(number) = signal else { return };
            if let Err(e) = close() {
                eprintln!("otel-agent: {e}");
            }
            std::process::exit(128 + number);
        })?;
    installed
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the signal thread ended")))
}

/// Polls a future once: its output if it was ready.
async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
    let mut future = Some(future);
    std::future::poll_fn(move |cx| {
        let f = future.as_mut().expect("polled once");
        std::task::Poll::Ready(match std::pin::Pin::new(f).poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}
