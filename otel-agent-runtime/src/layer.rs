//! The `tracing` layer that carries the metric instruments.
//!
//! Generated code finds the instruments through the dispatcher of the span it
//! created, not through a global: each telemetry pipeline (and each test's scoped
//! subscriber) has its own, and with no subscriber there is nothing to record.

use std::sync::Arc;

use tracing::Span;
use tracing_core::Subscriber;
use tracing_subscriber::Layer;

use crate::instruments::Instruments;

#[derive(Debug, Clone)]
pub(crate) struct InstrumentsLayer {
    pub instruments: Arc<Instruments>,
}

impl<S: Subscriber> Layer<S> for InstrumentsLayer {}

/// Runs `f` with the instruments of the pipeline `span` belongs to, if any.
pub(crate) fn with_instruments(span: &Span, f: impl FnOnce(&Instruments)) {
    span.with_subscriber(|(_, dispatch)| {
        if let Some(layer) = dispatch.downcast_ref::<InstrumentsLayer>() {
            f(&layer.instruments);
        }
    });
}
