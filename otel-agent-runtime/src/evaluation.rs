//! Quality scores for a step or a call: the conventions' `gen_ai.evaluation.result`
//! event on the span, and the `otel_agent.evaluation.score` histogram.
//!
//! ```
//! use otel_agent_runtime::evaluation::{self, Evaluation};
//!
//! #[otel_agent_runtime::agent_step(agent = "writer")]
//! fn write() -> String {
//!     let draft = String::from("...");
//!     evaluation::record(Evaluation::new("relevance").score(0.82).label("relevant"));
//!     draft
//! }
//! ```

use crate::SpanExt as _;
use opentelemetry::KeyValue;
use tracing::Span;

use crate::layer::with_layer;
use crate::semconv;

/// The name of the event the conventions define for an evaluation's result.
pub const EVENT_NAME: &str = "gen_ai.evaluation.result";

/// One evaluation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    name: String,
    score: Option<f64>,
    label: Option<String>,
    explanation: Option<String>,
}

impl Evaluation {
    /// An evaluation named after what it measures (`relevance`, `faithfulness`).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            score: None,
            label: None,
            explanation: None,
        }
    }

    /// The numeric score (recorded in the histogram too).
    pub fn score(mut self, value: f64) -> Self {
        self.score = Some(value);
        self
    }

    /// A low-cardinality verdict such as `pass` or `relevant` (also a metric attribute).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A free-text reason (span event only, never a metric attribute).
    pub fn explanation(mut self, text: impl Into<String>) -> Self {
        self.explanation = Some(text.into());
        self
    }
}

/// Records an evaluation on the current span (the step or call being scored).
pub fn record(evaluation: Evaluation) {
    record_on(&Span::current(), evaluation);
}

/// Records an evaluation on a given span.
pub fn record_on(span: &Span, evaluation: Evaluation) {
    let Evaluation {
        name,
        score,
        label,
        explanation,
    } = evaluation;
    let mut event = vec![KeyValue::new(semconv::GEN_AI_EVALUATION_NAME, name.clone())];
    if let Some(score) = score {
        event.push(KeyValue::new(semconv::GEN_AI_EVALUATION_SCORE_VALUE, score));
    }
    if let Some(label) = &label {
        event.push(KeyValue::new(
            semconv::GEN_AI_EVALUATION_SCORE_LABEL,
            label.clone(),
        ));
    }
    if let Some(explanation) = explanation {
        event.push(KeyValue::new(
            semconv::GEN_AI_EVALUATION_EXPLANATION,
            explanation,
        ));
    }
    span.add_otel_event(EVENT_NAME, event);
    let Some(score) = score else { return };
    with_layer(span, |layer| {
        let mut attrs = vec![KeyValue::new(semconv::GEN_AI_EVALUATION_NAME, name)];
        if let Some(label) = label {
            attrs.push(KeyValue::new(semconv::GEN_AI_EVALUATION_SCORE_LABEL, label));
        }
        layer.extend_with_tenant(span, &mut attrs);
        layer.instruments.evaluation_score.record(score, &attrs);
    });
}
