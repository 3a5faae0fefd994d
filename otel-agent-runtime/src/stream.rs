//! `#[llm_call]` on a function that returns a stream of chunks: the call lasts
//! until the stream ends (or is dropped), not until the function returns.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;

use crate::guard::LlmGuard;
use crate::probe::{Outcome, ResponseReport};

/// What one chunk says: an error, or parts of the response (with its output
/// deltas when the second argument, content captured, is true).
pub type ChunkReader<T> = fn(&T, bool) -> (Outcome, ResponseReport);

pin_project_lite::pin_project! {
    /// A model's streamed response, instrumented.
    ///
    /// The span stays open while the stream is consumed. The first chunk records
    /// the time to first chunk; chunks that carry usage, the response model, id
    /// or finish reasons fill the span (providers send usage in the final chunk).
    /// An `Err` chunk marks the call failed. Dropping the stream before its end
    /// ends the span as `cancelled`.
    pub struct LlmStream<S: Stream> {
        #[pin]
        inner: S,
        guard: Option<LlmGuard>,
        read: ChunkReader<S::Item>,
        report: ResponseReport,
        failure: Option<Outcome>,
        first_chunk: bool,
        content: bool,
    }
}

impl<S: Stream> LlmStream<S> {
    /// Wraps the stream an `#[llm_call]` function returned.
    pub fn new(guard: LlmGuard, inner: S, read: ChunkReader<S::Item>) -> Self {
        guard.mark_streaming();
        let content = guard.wants_content();
        Self {
            inner,
            guard: Some(guard),
            read,
            report: ResponseReport::default(),
            failure: None,
            first_chunk: true,
            content,
        }
    }
}

fn merge(into: &mut ResponseReport, chunk: ResponseReport) {
    if chunk.usage.is_some() {
        into.usage = chunk.usage;
    }
    if into.response_model.is_none() {
        into.response_model = chunk.response_model;
    }
    if into.response_id.is_none() {
        into.response_id = chunk.response_id;
    }
    into.finish_reasons.extend(chunk.finish_reasons);
    if !chunk.output.is_empty() {
        crate::message::merge_deltas(&mut into.output, chunk.output);
    }
}

impl<S: Stream> Stream for LlmStream<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let Some(guard) = this.guard.as_ref() else {
            return Poll::Ready(None);
        };
        let polled = {
            let _entered = guard.span().enter();
            this.inner.poll_next(cx)
        };
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(item)) => {
                if std::mem::take(this.first_chunk) {
                    guard.note_first_chunk(Instant::now());
                }
                let (outcome, chunk) = (this.read)(&item, *this.content);
                if matches!(outcome, Outcome::Failure { .. }) && this.failure.is_none() {
                    *this.failure = Some(outcome);
                }
                merge(this.report, chunk);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                if let Some(guard) = this.guard.take() {
                    let outcome = this.failure.take().unwrap_or(Outcome::Success);
                    guard.finish(outcome, std::mem::take(this.report));
                }
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The boxed stream types an `#[llm_call(.., stream)]` function may declare:
/// the instrumented stream becomes one of them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a boxed stream, which `#[llm_call(.., stream)]` needs to return the call's stream in",
    label = "the instrumented stream cannot become a `{Self}`",
    note = "declare the function as returning `Pin<Box<dyn Stream<Item = ..> + Send>>`, `BoxStream<'_, ..>` or `impl Stream<Item = ..>` (in a `Result` or not): a stream type of your own cannot be wrapped in place"
)]
pub trait DeclaredStream<S: Stream>: Sized {
    /// The instrumented stream as the declared type.
    fn from_instrumented(stream: Pin<Box<LlmStream<S>>>) -> Self;
}

impl<'a, S: Stream + Send + 'a> DeclaredStream<S>
    for Pin<Box<dyn Stream<Item = S::Item> + Send + 'a>>
{
    fn from_instrumented(stream: Pin<Box<LlmStream<S>>>) -> Self {
        stream
    }
}

impl<'a, S: Stream + 'a> DeclaredStream<S> for Pin<Box<dyn Stream<Item = S::Item> + 'a>> {
    fn from_instrumented(stream: Pin<Box<LlmStream<S>>>) -> Self {
        stream
    }
}

impl<'a, S: Stream + Send + Sync + 'a> DeclaredStream<S>
    for Pin<Box<dyn Stream<Item = S::Item> + Send + Sync + 'a>>
{
    fn from_instrumented(stream: Pin<Box<LlmStream<S>>>) -> Self {
        stream
    }
}

/// The instrumented stream as the type the function declares.
pub fn declared_stream<T: DeclaredStream<S>, S: Stream>(stream: Pin<Box<LlmStream<S>>>) -> T {
    T::from_instrumented(stream)
}
