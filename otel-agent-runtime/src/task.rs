//! Carrying the current span (and so the trace) into futures that run elsewhere.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use opentelemetry::context::{FutureExt as _, WithContext};
use tracing::instrument::{Instrument as _, Instrumented, WithDispatch, WithSubscriber as _};
use tracing::Span;

use crate::span_state::{mark_panicked, payload_message};

pin_project_lite::pin_project! {
    /// A future run inside an annotated call's span, noting a panic on the span
    /// before letting it continue unchanged.
    ///
    /// Executors such as Tokio catch a task's panic and drop the future later,
    /// when `std::thread::panicking()` is already false again: without this
    /// note the call would look cancelled rather than panicked.
    pub struct InCall<F> {
        #[pin]
        inner: Instrumented<F>,
    }
}

impl<F: Future> Future for InCall<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                mark_panicked(inner.span(), payload_message(&*payload));
                resume_unwind(payload)
            }
        }
    }
}

/// What an annotated call's guard shows of itself to [`InstrumentedCall`].
pub trait CallGuard {
    /// The call's span, entered around each poll of the body.
    fn span(&self) -> &Span;
}

impl CallGuard for crate::guard::LlmGuard {
    fn span(&self) -> &Span {
        self.span()
    }
}

impl CallGuard for crate::guard::StepGuard {
    fn span(&self) -> &Span {
        self.span()
    }
}

pin_project_lite::pin_project! {
    /// The body of an annotated `async fn`, with its guard when something
    /// listens. Without a guard, polling it is polling the body: one test of
    /// the guard, and the instrumented path out of line, so that the caller's
    /// future is as small and as quick as the body's. With one, each poll runs
    /// inside the call's span (a panic noted on it, as with [`InCall`]), and
    /// `finish` records the value the body returned.
    ///
    /// The guard is on the heap so the future the caller holds grows by one
    /// pointer, whatever the guard's size.
    pub struct InstrumentedCall<F, G, C>
    where
        G: CallGuard,
    {
        // Dropped by hand: a call cancelled mid-way drops what its body holds
        // inside its span, as `tracing`'s `Instrumented` does, so what those
        // drops log stays with the call.
        #[pin]
        body: ManuallyDrop<F>,
        guard: Option<Box<G>>,
        finish: C,
    }

    impl<F, G, C> PinnedDrop for InstrumentedCall<F, G, C>
    where
        G: CallGuard,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Owned before the span is entered: should entering panic, the
            // body is still dropped (outside the span), as pinned data must be.
            let body = DropsBody(this.body);
            match this.guard.as_deref() {
                // The guard itself drops after this, ending a cancelled call
                // once its body is gone.
                Some(guard) => {
                    let _entered = guard.span().enter();
                    drop(body);
                }
                None => drop(body),
            }
        }
    }
}

/// Drops a [`InstrumentedCall`] body where it lies when it goes out of scope.
struct DropsBody<'a, F>(Pin<&'a mut ManuallyDrop<F>>);

impl<F> Drop for DropsBody<'_, F> {
    fn drop(&mut self) {
        // SAFETY: only `InstrumentedCall`'s drop makes this, once, and the body is not
        // touched after it: pinned data may be dropped where it lies.
        unsafe { ManuallyDrop::drop(self.0.as_mut().get_unchecked_mut()) }
    }
}

impl<F, G, C> InstrumentedCall<F, G, C>
where
    F: Future,
    G: CallGuard,
    C: Fn(G, &F::Output),
{
    /// The body, the guard (`None` when nobody listens) and what ends the call.
    pub fn new(body: F, guard: Option<Box<G>>, finish: C) -> Self {
        Self {
            body: ManuallyDrop::new(body),
            guard,
            finish,
        }
    }
}

impl<F, G, C> Future for InstrumentedCall<F, G, C>
where
    F: Future,
    G: CallGuard,
    C: Fn(G, &F::Output),
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // SAFETY: `ManuallyDrop` is transparent and the body is never moved
        // out of it: this is the pin projection `#[pin] body: F` would give.
        let body = unsafe { this.body.map_unchecked_mut(|body| &mut **body) };
        if this.guard.is_none() {
            return body.poll(cx);
        }
        poll_guarded(body, this.guard, this.finish, cx)
    }
}

#[inline(never)]
fn poll_guarded<F, G, C>(
    body: Pin<&mut F>,
    guard: &mut Option<Box<G>>,
    finish: &C,
    cx: &mut Context<'_>,
) -> Poll<F::Output>
where
    F: Future,
    G: CallGuard,
    C: Fn(G, &F::Output),
{
    let output = {
        let Some(span) = guard.as_deref().map(CallGuard::span) else {
            return body.poll(cx);
        };
        match in_call(span, || body.poll(cx)) {
            Poll::Ready(output) => output,
            Poll::Pending => return Poll::Pending,
        }
    };
    // Taken here only: a later poll finds no guard and polls the finished
    // body, which reports that itself.
    match guard.take() {
        Some(guard) => {
            finish(*guard, &output);
            Poll::Ready(output)
        }
        None => Poll::Ready(output),
    }
}

/// Runs the body of an annotated non-`async` function inside its span, noting a
/// panic's message on the span before letting the panic continue unchanged.
pub fn in_call<R>(span: &Span, body: impl FnOnce() -> R) -> R {
    let _entered = span.enter();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            mark_panicked(span, payload_message(&*payload));
            resume_unwind(payload)
        }
    }
}

/// Wraps the body of an annotated `async fn`.
pub(crate) fn in_async_call<F: Future>(future: F, span: &Span) -> InCall<F> {
    InCall {
        inner: future.instrument(span.clone()),
    }
}

/// A future that keeps the span, subscriber and OpenTelemetry context (with the
/// [`context`](crate::context) scope) current where it was created.
pub type InCurrentContext<F> = WithDispatch<Instrumented<WithContext<F>>>;

/// Makes a future carry the current span, subscriber and OpenTelemetry context
/// wherever it runs, so the spans it creates join the current trace under the
/// right parent, with the current session, user and tenant.
///
/// ```
/// use otel_agent_runtime::InCurrentContextExt as _;
/// # async fn work() {}
/// # async fn demo() {
/// let handle = tokio::spawn(work().in_current_context());
/// # }
/// ```
pub trait InCurrentContextExt: Future + Sized {
    /// Wraps the future in the current span, subscriber and OpenTelemetry context.
    fn in_current_context(self) -> InCurrentContext<Self> {
        self.with_current_context()
            .in_current_span()
            .with_current_subscriber()
    }
}

impl<F: Future> InCurrentContextExt for F {}

/// `tokio::spawn` that keeps the new task in the current trace: spans created in
/// it are children of the span current here.
#[cfg(feature = "tokio")]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_context())
}
