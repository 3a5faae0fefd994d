//! The queue between finished spans and their exporter.
//!
//! The SDK's `BatchSpanProcessor` preallocates one slot per span of its
//! capacity (about 370 bytes each, whether used or not), so a capacity that
//! absorbs a burst costs its memory up front, and a large one aborts the
//! program. This queue grows only as spans arrive and is bounded twice: by a
//! span count (`OTEL_BSP_MAX_QUEUE_SIZE`) and by an estimate of the bytes the
//! queued spans hold ([`MAX_QUEUE_BYTES`]). A span that would pass either bound
//! is dropped and counted, never waited for: the program never blocks on the
//! collector.
//!
//! One thread drains the queue. It exports as soon as a batch is full and keeps
//! exporting while full batches wait, so a burst is delivered at the exporter's
//! pace; a partial batch leaves after the schedule delay, on a flush, or at
//! shutdown, which exports everything still queued before it stops the
//! exporter.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

/// The most bytes (estimated from each span's attributes, events and links)
/// the queue holds before it drops new spans: 64 MiB.
pub(crate) const MAX_QUEUE_BYTES: usize = 64 << 20;

/// How long `force_flush` waits for the queue to empty.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Sizes of the queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    /// Spans the queue holds at most.
    pub(crate) max_spans: usize,
    /// Estimated bytes the queue holds at most.
    pub(crate) max_bytes: usize,
    /// Spans per export.
    pub(crate) batch: usize,
    /// The longest a span waits for a batch to fill.
    pub(crate) delay: Duration,
}

/// Told about every span the queue drops because it is full.
pub(crate) type OnDrop = Box<dyn Fn(u64) + Send + Sync>;

/// A span processor that queues finished spans for one exporter thread.
pub(crate) struct SpanQueue {
    shared: Arc<Shared>,
    limits: QueueLimits,
    on_drop: OnDrop,
    dropped: AtomicU64,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SpanQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanQueue")
            .field("limits", &self.limits)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the exporter thread.
    work: Condvar,
    /// Wakes those waiting for a flush or the shutdown.
    done: Condvar,
}

#[derive(Default)]
struct State {
    spans: VecDeque<(SpanData, usize)>,
    bytes: usize,
    /// Flushes asked for, and flushes completed (everything queued before the
    /// request was exported).
    flush_asked: u64,
    flush_done: u64,
    /// The first failed export since the last completed flush.
    flush_error: Option<String>,
    resource: Option<Resource>,
    shutting_down: bool,
    stopped: bool,
    shutdown_result: Option<OTelSdkResult>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in an exporter must not take every later span with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SpanQueue {
    /// Starts the exporter thread. Fails only when the system refuses a thread.
    pub(crate) fn start<E>(
        exporter: E,
        limits: QueueLimits,
        on_drop: OnDrop,
    ) -> std::io::Result<Self>
    where
        E: SpanExporter + 'static,
    {
        let limits = QueueLimits {
            max_spans: limits.max_spans.max(1),
            batch: limits.batch.max(1),
            ..limits
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("otel-agent-span-export".into())
                .spawn(move || export_loop(exporter, &shared, limits))?
        };
        Ok(Self {
            shared,
            limits,
            on_drop,
            dropped: AtomicU64::new(0),
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Spans dropped because the queue was full or already shut down.
    #[cfg(test)]
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn drop_span(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        (self.on_drop)(1);
    }
}

impl SpanProcessor for SpanQueue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        let weight = weight(&span);
        let mut state = self.shared.lock();
        if state.shutting_down
            || state.spans.len() >= self.limits.max_spans
            || state.bytes.saturating_add(weight) > self.limits.max_bytes
        {
            drop(state);
            self.drop_span();
            return;
        }
        state.spans.push_back((span, weight));
        state.bytes += weight;
        // The thread sleeps until a batch is full; waking it for every span
        // after that would only cost the caller.
        let full = state.spans.len() % self.limits.batch == 0;
        drop(state);
        if full {
            self.shared.work.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut state = self.shared.lock();
        if state.stopped {
            return Ok(());
        }
        state.flush_asked += 1;
        let ticket = state.flush_asked;
        self.shared.work.notify_one();
        let (mut state, waited) = self
            .shared
            .done
            .wait_timeout_while(state, FLUSH_TIMEOUT, |s| {
                s.flush_done < ticket && !s.stopped
            })
            .unwrap_or_else(|e| e.into_inner());
        if waited.timed_out() {
            return Err(OTelSdkError::Timeout(FLUSH_TIMEOUT));
        }
        match state.flush_error.take() {
            Some(error) => Err(OTelSdkError::InternalFailure(error)),
            None => Ok(()),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let mut state = self.shared.lock();
        if state.shutting_down && state.stopped {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        state.shutting_down = true;
        self.shared.work.notify_one();
        let (mut state, waited) = self
            .shared
            .done
            .wait_timeout_while(state, timeout, |s| !s.stopped)
            .unwrap_or_else(|e| e.into_inner());
        if waited.timed_out() {
            // The thread goes on alone and ends with the process; what it
            // still holds is reported by the export health summary.
            return Err(OTelSdkError::Timeout(timeout));
        }
        let result = state.shutdown_result.take().unwrap_or(Ok(()));
        drop(state);
        if let Some(worker) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = worker.join();
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.shared.lock().resource = Some(resource.clone());
        self.shared.work.notify_one();
    }
}

impl Drop for SpanQueue {
    fn drop(&mut self) {
        // Not shut down (a pipeline dropped without its guard): let the thread
        // deliver what is queued and stop, without waiting for it here.
        let mut state = self.shared.lock();
        if !state.shutting_down {
            state.shutting_down = true;
            self.shared.work.notify_one();
        }
    }
}

fn export_loop<E: SpanExporter>(mut exporter: E, shared: &Shared, limits: QueueLimits) {
    // The exporter's own HTTP and gRPC stacks must not make spans of their own
    // that come back into this queue.
    let _quiet = opentelemetry::Context::enter_telemetry_suppressed_scope();
    let mut last_export = Instant::now();
    let mut state = shared.lock();
    loop {
        if let Some(resource) = state.resource.take() {
            exporter.set_resource(&resource);
        }
        let flushing = state.flush_asked > state.flush_done;
        let due = last_export.elapsed() >= limits.delay && !state.spans.is_empty();
        if state.spans.len() >= limits.batch || flushing || state.shutting_down || due {
            let take = state.spans.len().min(limits.batch);
            let mut freed = 0;
            let batch: Vec<SpanData> = state
                .spans
                .drain(..take)
                .map(|(span, weight)| {
                    freed += weight;
                    span
                })
                .collect();
            state.bytes -= freed;
            let ticket = state.flush_asked;
            let empty = state.spans.is_empty();
            drop(state);
            let result = if batch.is_empty() {
                Ok(())
            } else {
                futures_executor::block_on(exporter.export(batch))
            };
            last_export = Instant::now();
            state = shared.lock();
            if let Err(error) = result {
                if flushing && state.flush_error.is_none() {
                    state.flush_error = Some(error.to_string());
                }
            }
            if empty && flushing {
                state.flush_done = ticket;
                shared.done.notify_all();
            }
            if empty && state.shutting_down && state.spans.is_empty() {
                drop(state);
                let result = exporter.shutdown();
                state = shared.lock();
                state.shutdown_result = Some(result);
                state.stopped = true;
                shared.done.notify_all();
                return;
            }
            continue;
        }
        let wait = if state.spans.is_empty() {
            // Nothing to send on time: sleep until a span or a request.
            limits.delay.max(Duration::from_millis(1))
        } else {
            limits.delay.saturating_sub(last_export.elapsed())
        };
        state = shared
            .work
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Roughly the bytes a finished span holds: its own size plus what its
/// strings, attributes, events and links own on the heap.
fn weight(span: &SpanData) -> usize {
    let attributes = |list: &[KeyValue]| -> usize {
        list.iter()
            .map(|kv| size_of::<KeyValue>() + kv.key.as_str().len() + value_bytes(&kv.value))
            .sum()
    };
    let events: usize = span
        .events
        .iter()
        .map(|event| {
            size_of::<opentelemetry::trace::Event>()
                + event.name.len()
                + attributes(&event.attributes)
        })
        .sum();
    let links: usize = span
        .links
        .iter()
        .map(|link| size_of::<opentelemetry::trace::Link>() + attributes(&link.attributes))
        .sum();
    size_of::<SpanData>() + span.name.len() + attributes(&span.attributes) + events + links
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.as_str().len(),
        Value::Array(Array::String(items)) => items
            .iter()
            .map(|s| size_of::<Value>() + s.as_str().len())
            .sum(),
        Value::Array(Array::Bool(items)) => items.len(),
        Value::Array(Array::I64(items)) => items.len() * 8,
        Value::Array(Array::F64(items)) => items.len() * 8,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::sync::atomic::AtomicUsize;

    /// Counts what it is given; blocks each export until `open` is set.
    #[derive(Debug, Clone, Default)]
    struct Counting {
        exported: Arc<AtomicUsize>,
        batches: Arc<Mutex<Vec<usize>>>,
        shut: Arc<AtomicUsize>,
    }

    impl SpanExporter for Counting {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.batches.lock().unwrap().push(batch.len());
            self.exported.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            self.shut.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn span(attribute_bytes: usize) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "chat m".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![KeyValue::new("k", "x".repeat(attribute_bytes))],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    /// A queue in front of a counting exporter, its drops reported nowhere.
    fn started(limits: QueueLimits) -> (Counting, SpanQueue) {
        let exporter = Counting::default();
        let queue = SpanQueue::start(exporter.clone(), limits, Box::new(|_| {})).unwrap();
        (exporter, queue)
    }

    fn limits(max_spans: usize, max_bytes: usize) -> QueueLimits {
        QueueLimits {
            max_spans,
            max_bytes,
            batch: 512,
            delay: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_burst_within_the_bounds_is_delivered_at_shutdown() {
        let (exporter, queue) = started(limits(65_536, MAX_QUEUE_BYTES));
        for _ in 0..10_000 {
            queue.on_end(span(10));
        }
        queue.shutdown_with_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(exporter.exported.load(Ordering::SeqCst), 10_000);
        assert_eq!(queue.dropped(), 0);
        assert_eq!(exporter.shut.load(Ordering::SeqCst), 1);
        assert!(exporter.batches.lock().unwrap().iter().all(|&n| n <= 512));
    }

    #[test]
    fn full_batches_leave_without_waiting_for_the_delay() {
        let (exporter, queue) = started(limits(65_536, MAX_QUEUE_BYTES));
        for _ in 0..1024 {
            queue.on_end(span(10));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while exporter.exported.load(Ordering::SeqCst) < 1024 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            exporter.exported.load(Ordering::SeqCst),
            1024,
            "the delay is 60 s"
        );
    }

    #[test]
    fn the_byte_bound_drops_and_reports_what_does_not_fit() {
        let exporter = Counting::default();
        let reported = Arc::new(AtomicU64::new(0));
        let seen = reported.clone();
        let one = weight(&span(1000));
        let queue = SpanQueue::start(
            exporter.clone(),
            limits(65_536, one * 10),
            Box::new(move |n| {
                seen.fetch_add(n, Ordering::SeqCst);
            }),
        )
        .unwrap();
        for _ in 0..25 {
            queue.on_end(span(1000));
        }
        queue.shutdown_with_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(exporter.exported.load(Ordering::SeqCst), 10);
        assert_eq!(queue.dropped(), 15);
        assert_eq!(reported.load(Ordering::SeqCst), 15);
    }

    #[test]
    fn the_count_bound_drops_and_a_flush_delivers_the_rest() {
        let (exporter, queue) = started(limits(100, MAX_QUEUE_BYTES));
        for _ in 0..150 {
            queue.on_end(span(1));
        }
        queue.force_flush().unwrap();
        assert_eq!(exporter.exported.load(Ordering::SeqCst), 100);
        assert_eq!(queue.dropped(), 50);
        // After a flush the queue takes spans again.
        queue.on_end(span(1));
        queue.force_flush().unwrap();
        assert_eq!(exporter.exported.load(Ordering::SeqCst), 101);
    }

    #[test]
    fn spans_after_shutdown_are_dropped_and_a_second_shutdown_says_so() {
        let (_, queue) = started(limits(100, MAX_QUEUE_BYTES));
        queue.shutdown_with_timeout(Duration::from_secs(5)).unwrap();
        queue.on_end(span(1));
        assert_eq!(queue.dropped(), 1);
        assert!(matches!(
            queue.shutdown_with_timeout(Duration::from_secs(1)),
            Err(OTelSdkError::AlreadyShutdown)
        ));
    }

    #[test]
    fn memory_grows_with_use_not_with_capacity() {
        // A million-span capacity costs nothing until spans arrive.
        let (_, queue) = started(limits(1 << 20, MAX_QUEUE_BYTES));
        assert_eq!(queue.shared.lock().spans.capacity(), 0);
        queue.shutdown_with_timeout(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn the_weight_counts_what_the_span_owns() {
        assert!(weight(&span(10_000)) >= 10_000 + size_of::<SpanData>());
        assert!(weight(&span(0)) < 2_000);
    }
}
