//! Which attribute keys a user may ask for, and where.
//!
//! - Keys in the `gen_ai.*` namespace must be ones the GenAI semantic conventions
//!   define. The lists below mirror the `GEN_AI_*` constants of
//!   `opentelemetry-semantic-conventions` 0.33 (feature `semconv_experimental`);
//!   the test `genai_keys_match_the_semantic_conventions` fails when they drift.
//! - Keys the macros set themselves cannot be set again through `fields(...)` or
//!   `metric_attributes(...)`.
//! - Metric attributes must be low-cardinality: ids and per-user values belong on
//!   spans, never on metrics.

/// The GenAI attributes the conventions define (and recommend: not deprecated).
pub(crate) const GEN_AI_KEYS: &[&str] = &[
    "gen_ai.agent.description",
    "gen_ai.agent.id",
    "gen_ai.agent.name",
    "gen_ai.agent.version",
    "gen_ai.conversation.id",
    "gen_ai.data_source.id",
    "gen_ai.embeddings.dimension.count",
    "gen_ai.evaluation.explanation",
    "gen_ai.evaluation.name",
    "gen_ai.evaluation.score.label",
    "gen_ai.evaluation.score.value",
    "gen_ai.input.messages",
    "gen_ai.operation.name",
    "gen_ai.output.messages",
    "gen_ai.output.type",
    "gen_ai.prompt.name",
    "gen_ai.provider.name",
    "gen_ai.request.choice.count",
    "gen_ai.request.encoding_formats",
    "gen_ai.request.frequency_penalty",
    "gen_ai.request.max_tokens",
    "gen_ai.request.model",
    "gen_ai.request.presence_penalty",
    "gen_ai.request.seed",
    "gen_ai.request.stop_sequences",
    "gen_ai.request.stream",
    "gen_ai.request.temperature",
    "gen_ai.request.top_k",
    "gen_ai.request.top_p",
    "gen_ai.response.finish_reasons",
    "gen_ai.response.id",
    "gen_ai.response.model",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.retrieval.documents",
    "gen_ai.retrieval.query.text",
    "gen_ai.system_instructions",
    "gen_ai.token.type",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.id",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "gen_ai.tool.description",
    "gen_ai.tool.name",
    "gen_ai.tool.type",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.workflow.name",
];

/// Deprecated GenAI attributes and the key that replaced each.
pub(crate) const GEN_AI_REPLACED: &[(&str, &str)] = &[
    (
        "gen_ai.openai.request.response_format",
        "gen_ai.output.type",
    ),
    ("gen_ai.openai.request.seed", "gen_ai.request.seed"),
    (
        "gen_ai.openai.request.service_tier",
        "openai.request.service_tier",
    ),
    (
        "gen_ai.openai.response.service_tier",
        "openai.response.service_tier",
    ),
    (
        "gen_ai.openai.response.system_fingerprint",
        "openai.response.system_fingerprint",
    ),
    ("gen_ai.system", "gen_ai.provider.name"),
    (
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.output_tokens",
    ),
    ("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
];

/// GenAI attributes the conventions removed with no replacement.
pub(crate) const GEN_AI_REMOVED: &[&str] = &["gen_ai.completion", "gen_ai.prompt"];

/// Why a `gen_ai.*` key cannot be used, if it cannot.
pub(crate) fn check_gen_ai(key: &str) -> Result<(), String> {
    let Some(rest) = key.strip_prefix("gen_ai.") else {
        return Ok(());
    };
    if GEN_AI_KEYS.contains(&key) {
        return Ok(());
    }
    if let Some((_, new)) = GEN_AI_REPLACED.iter().find(|(old, _)| *old == key) {
        return Err(format!(
            "`{key}` is deprecated by the GenAI semantic conventions; write `{new}` instead"
        ));
    }
    if GEN_AI_REMOVED.contains(&key) {
        return Err(format!(
            "`{key}` was removed from the GenAI semantic conventions; message content is \
             `gen_ai.input.messages` / `gen_ai.output.messages`, recorded only on opt-in"
        ));
    }
    let own = format!("app.{rest}");
    Err(match crate::suggest::closest_within(key, GEN_AI_KEYS, 3) {
        Some(guess) => format!(
            "`{key}` is not defined by the GenAI semantic conventions: did you mean `{guess}`? \
             (for an attribute of your own, use your own namespace, e.g. `{own}`)"
        ),
        None => {
            let group = key.rsplit_once('.').map_or("gen_ai.", |(g, _)| g);
            let siblings: Vec<&str> = GEN_AI_KEYS
                .iter()
                .copied()
                .filter(|k| k.starts_with(group) && k[group.len()..].starts_with('.'))
                .collect();
            let hint = if siblings.is_empty() {
                String::new()
            } else {
                format!(
                    " Under `{group}` they define {}.",
                    crate::suggest::one_of(&siblings)
                )
            };
            format!(
                "`{key}` is not defined by the GenAI semantic conventions; keep `gen_ai.*` for \
                 the conventions' attributes and use your own namespace, e.g. `{own}`.{hint}"
            )
        }
    })
}

/// A key in another namespace that is one typo away from `gen_ai.*`
/// (`genai.usage.input_tokens`): the key it was probably meant to be.
pub(crate) fn misspelt_gen_ai(key: &str) -> Option<String> {
    let (first, rest) = key.split_once('.')?;
    if first == "gen_ai" || crate::suggest::closest(first, &["gen_ai"]).is_none() {
        return None;
    }
    let meant = format!("gen_ai.{rest}");
    if GEN_AI_KEYS.contains(&meant.as_str()) {
        Some(meant)
    } else {
        crate::suggest::closest_within(&meant, GEN_AI_KEYS, 3).map(str::to_owned)
    }
}

/// Keys tracing-opentelemetry reads as instructions (span name, kind, status).
pub(crate) fn is_otel_instruction(key: &str) -> bool {
    key.starts_with("otel.")
}

/// Why a metric attribute key would give a metric unbounded cardinality, if it would.
pub(crate) fn high_cardinality(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(['.', '_', '-'])
        .filter(|w| !w.is_empty())
        .collect();
    let camel_id = key.ends_with("Id") || key.ends_with("ID") || key.ends_with("Ids");
    let last = words.last().copied().unwrap_or_default();
    if matches!(last, "id" | "ids" | "uuid" | "guid") || camel_id {
        return Some("it is an id, so every value would start a new time series");
    }
    if matches!(words.first().copied(), Some("user" | "enduser" | "session")) {
        return Some("it describes a user or a session, so there would be a time series per user");
    }
    const CONTENT: &[&str] = &[
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.definitions",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
        "gen_ai.prompt",
        "gen_ai.completion",
    ];
    if CONTENT.contains(&key) {
        return Some("it is message content, unbounded and never recorded by default");
    }
    None
}

/// What sets a key the macros record themselves.
#[derive(Clone, Copy)]
pub(crate) struct Reserved {
    pub key: &'static str,
    pub set_by: &'static str,
}

const fn reserved(key: &'static str, set_by: &'static str) -> Reserved {
    Reserved { key, set_by }
}

const ERROR_TYPE: Reserved = reserved(
    "error.type",
    "the macro, when the call returns `Err`, panics or is cancelled",
);
const ROLLED_UP: &str = "the macro: the tokens of the model calls made under the step, summed";
const INPUT_ROLLUP: Reserved = reserved("gen_ai.usage.input_tokens", ROLLED_UP);
const OUTPUT_ROLLUP: Reserved = reserved("gen_ai.usage.output_tokens", ROLLED_UP);
const COST: Reserved = reserved(
    "otel_agent.cost.usd",
    "the macro, from the configured price table",
);

/// Span fields of `#[agent_step]` (by kind) and `#[llm_call]`.
pub(crate) const AGENT_SPAN_KEYS: &[Reserved] = &[
    reserved("gen_ai.operation.name", "`kind`"),
    reserved("gen_ai.agent.name", "`agent = \"...\"`"),
    reserved("gen_ai.agent.description", "`description = \"...\"`"),
    INPUT_ROLLUP,
    OUTPUT_ROLLUP,
    COST,
    ERROR_TYPE,
];
pub(crate) const TOOL_SPAN_KEYS: &[Reserved] = &[
    reserved("gen_ai.operation.name", "`kind`"),
    reserved("gen_ai.tool.name", "`name = \"...\"`"),
    reserved("gen_ai.tool.type", "the macro (always `function`)"),
    reserved("gen_ai.tool.description", "`description = \"...\"`"),
    INPUT_ROLLUP,
    OUTPUT_ROLLUP,
    COST,
    ERROR_TYPE,
];
pub(crate) const WORKFLOW_SPAN_KEYS: &[Reserved] = &[
    reserved("gen_ai.operation.name", "`kind`"),
    reserved("gen_ai.workflow.name", "`name = \"...\"`"),
    INPUT_ROLLUP,
    OUTPUT_ROLLUP,
    COST,
    ERROR_TYPE,
];
const FROM_RESPONSE: &str = "the return value, through `LlmResponse`";
pub(crate) const LLM_SPAN_KEYS: &[Reserved] = &[
    reserved("gen_ai.operation.name", "`operation = ...`"),
    reserved("gen_ai.provider.name", "`provider = \"...\"`"),
    reserved("gen_ai.request.model", "`model = ...`"),
    reserved("gen_ai.response.model", FROM_RESPONSE),
    reserved("gen_ai.response.id", FROM_RESPONSE),
    reserved("gen_ai.response.finish_reasons", FROM_RESPONSE),
    reserved("gen_ai.usage.input_tokens", FROM_RESPONSE),
    reserved("gen_ai.usage.output_tokens", FROM_RESPONSE),
    reserved("gen_ai.usage.cache_read.input_tokens", FROM_RESPONSE),
    reserved("gen_ai.usage.cache_creation.input_tokens", FROM_RESPONSE),
    reserved("gen_ai.usage.reasoning.output_tokens", FROM_RESPONSE),
    reserved(
        "gen_ai.request.stream",
        "the macro, when the function returns a stream",
    ),
    reserved(
        "gen_ai.response.time_to_first_chunk",
        "the macro, when the function returns a stream",
    ),
    reserved("gen_ai.input.messages", "`content::record_input`"),
    reserved("gen_ai.output.messages", "`content::record_output`"),
    reserved(
        "gen_ai.system_instructions",
        "`content::record_system_instructions`",
    ),
    COST,
    ERROR_TYPE,
];

/// Metric attributes the runtime records itself.
pub(crate) const STEP_METRIC_KEYS: &[Reserved] = &[
    reserved("gen_ai.operation.name", "`kind`"),
    reserved("otel_agent.step.name", "the step's name"),
    reserved("otel_agent.step.outcome", "the call's outcome"),
    ERROR_TYPE,
];
pub(crate) const LLM_METRIC_KEYS: &[Reserved] = &[
    reserved("gen_ai.operation.name", "`operation = ...`"),
    reserved("gen_ai.provider.name", "`provider = \"...\"`"),
    reserved("gen_ai.request.model", "`model = ...`"),
    reserved("gen_ai.response.model", FROM_RESPONSE),
    reserved("gen_ai.token.type", "the macro (`input` / `output`)"),
    ERROR_TYPE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_keys_pass_and_typos_get_a_suggestion() {
        assert!(check_gen_ai("gen_ai.usage.input_tokens").is_ok());
        assert!(check_gen_ai("app.anything").is_ok());
        let typo = check_gen_ai("gen_ai.usage.input_token").unwrap_err();
        assert!(
            typo.contains("did you mean `gen_ai.usage.input_tokens`?"),
            "{typo}"
        );
        let old = check_gen_ai("gen_ai.system").unwrap_err();
        assert!(old.contains("write `gen_ai.provider.name`"), "{old}");
        assert_eq!(
            misspelt_gen_ai("genai.usage.input_tokens").as_deref(),
            Some("gen_ai.usage.input_tokens")
        );
        assert_eq!(misspelt_gen_ai("app.usage"), None);
    }

    #[test]
    fn ids_and_users_are_high_cardinality() {
        for key in [
            "session.id",
            "user.id",
            "gen_ai.conversation.id",
            "gen_ai.response.id",
            "request_id",
            "app.trace_id",
            "spanId",
            "user.email",
            "gen_ai.input.messages",
        ] {
            assert!(high_cardinality(key).is_some(), "{key}");
        }
        for key in [
            "deployment.environment",
            "app.team",
            "gen_ai.agent.name",
            "tier",
            "valid",
        ] {
            assert!(high_cardinality(key).is_none(), "{key}");
        }
    }

    /// Compares the lists above with the `GEN_AI_*` constants of
    /// `opentelemetry-semantic-conventions`: renamed or removed constants fail to
    /// compile here; new ones are found by reading the crate's source.
    #[test]
    #[allow(deprecated)]
    fn genai_keys_match_the_semantic_conventions() {
        use opentelemetry_semantic_conventions::attribute as a;
        let known: Vec<&str> = vec![
            a::GEN_AI_AGENT_DESCRIPTION,
            a::GEN_AI_AGENT_ID,
            a::GEN_AI_AGENT_NAME,
            a::GEN_AI_AGENT_VERSION,
            a::GEN_AI_CONVERSATION_ID,
            a::GEN_AI_DATA_SOURCE_ID,
            a::GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
            a::GEN_AI_EVALUATION_EXPLANATION,
            a::GEN_AI_EVALUATION_NAME,
            a::GEN_AI_EVALUATION_SCORE_LABEL,
            a::GEN_AI_EVALUATION_SCORE_VALUE,
            a::GEN_AI_INPUT_MESSAGES,
            a::GEN_AI_OPERATION_NAME,
            a::GEN_AI_OUTPUT_MESSAGES,
            a::GEN_AI_OUTPUT_TYPE,
            a::GEN_AI_PROMPT_NAME,
            a::GEN_AI_PROVIDER_NAME,
            a::GEN_AI_REQUEST_CHOICE_COUNT,
            a::GEN_AI_REQUEST_ENCODING_FORMATS,
            a::GEN_AI_REQUEST_FREQUENCY_PENALTY,
            a::GEN_AI_REQUEST_MAX_TOKENS,
            a::GEN_AI_REQUEST_MODEL,
            a::GEN_AI_REQUEST_PRESENCE_PENALTY,
            a::GEN_AI_REQUEST_SEED,
            a::GEN_AI_REQUEST_STOP_SEQUENCES,
            a::GEN_AI_REQUEST_STREAM,
            a::GEN_AI_REQUEST_TEMPERATURE,
            a::GEN_AI_REQUEST_TOP_K,
            a::GEN_AI_REQUEST_TOP_P,
            a::GEN_AI_RESPONSE_FINISH_REASONS,
            a::GEN_AI_RESPONSE_ID,
            a::GEN_AI_RESPONSE_MODEL,
            a::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
            a::GEN_AI_RETRIEVAL_DOCUMENTS,
            a::GEN_AI_RETRIEVAL_QUERY_TEXT,
            a::GEN_AI_SYSTEM_INSTRUCTIONS,
            a::GEN_AI_TOKEN_TYPE,
            a::GEN_AI_TOOL_CALL_ARGUMENTS,
            a::GEN_AI_TOOL_CALL_ID,
            a::GEN_AI_TOOL_CALL_RESULT,
            a::GEN_AI_TOOL_DEFINITIONS,
            a::GEN_AI_TOOL_DESCRIPTION,
            a::GEN_AI_TOOL_NAME,
            a::GEN_AI_TOOL_TYPE,
            a::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            a::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            a::GEN_AI_USAGE_INPUT_TOKENS,
            a::GEN_AI_USAGE_OUTPUT_TOKENS,
            a::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
            a::GEN_AI_WORKFLOW_NAME,
        ];
        assert_eq!(known, GEN_AI_KEYS);
        let replaced = [
            a::GEN_AI_OPENAI_REQUEST_RESPONSE_FORMAT,
            a::GEN_AI_OPENAI_REQUEST_SEED,
            a::GEN_AI_OPENAI_REQUEST_SERVICE_TIER,
            a::GEN_AI_OPENAI_RESPONSE_SERVICE_TIER,
            a::GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
            a::GEN_AI_SYSTEM,
            a::GEN_AI_USAGE_COMPLETION_TOKENS,
            a::GEN_AI_USAGE_PROMPT_TOKENS,
        ];
        let ours: Vec<&str> = GEN_AI_REPLACED.iter().map(|(old, _)| *old).collect();
        assert_eq!(ours, replaced);
        assert_eq!(GEN_AI_REMOVED, [a::GEN_AI_COMPLETION, a::GEN_AI_PROMPT]);

        // New constants: read the source of the crate, when it is where Cargo keeps it.
        let Some(source) = semconv_source() else {
            eprintln!("note: the source of opentelemetry-semantic-conventions was not found; only renames and removals were checked");
            return;
        };
        let listed: Vec<&str> = GEN_AI_KEYS
            .iter()
            .copied()
            .chain(ours.iter().copied())
            .chain(GEN_AI_REMOVED.iter().copied())
            .collect();
        let mut missing = Vec::new();
        for chunk in source.split("pub const GEN_AI_").skip(1) {
            let Some(value) = chunk.split('"').nth(1) else {
                continue;
            };
            if !listed.contains(&value) {
                missing.push(value.to_owned());
            }
        }
        assert!(
            missing.is_empty(),
            "opentelemetry-semantic-conventions defines GenAI attributes missing from keys.rs: {missing:?}"
        );
    }

    /// `src/attribute.rs` of the locked opentelemetry-semantic-conventions, from Cargo's registry.
    fn semconv_source() -> Option<String> {
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
        let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).ok()?;
        let entry = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"opentelemetry-semantic-conventions\""))?;
        let version = entry.split("version = \"").nth(1)?.split('"').next()?;
        let home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo"))
            })?;
        let registries = std::fs::read_dir(home.join("registry").join("src")).ok()?;
        registries.flatten().find_map(|registry| {
            let file = registry
                .path()
                .join(format!("opentelemetry-semantic-conventions-{version}"))
                .join("src")
                .join("attribute.rs");
            std::fs::read_to_string(file).ok()
        })
    }
}
