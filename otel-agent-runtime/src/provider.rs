//! The provider a model belongs to, when nobody said: `gpt-4o` is OpenAI's.

/// Maps well-known model families to the conventions' `gen_ai.provider.name` values.
pub fn infer_provider(model: &str) -> &'static str {
    let m = model.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| m.starts_with(p));
    if starts(&[
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt",
        "text-embedding-",
        "dall-e",
        "whisper",
        "davinci",
        "babbage",
    ]) {
        "openai"
    } else if starts(&["claude"]) {
        "anthropic"
    } else if starts(&["gemini", "gemma"]) {
        "gcp.gemini"
    } else if starts(&["mistral", "mixtral", "codestral", "ministral", "pixtral"]) {
        "mistral_ai"
    } else if starts(&["command", "embed-english", "embed-multilingual"]) {
        "cohere"
    } else if starts(&["deepseek"]) {
        "deepseek"
    } else if starts(&["grok"]) {
        "x_ai"
    } else if starts(&["llama", "meta-llama"]) {
        "meta"
    } else {
        "unknown"
    }
}
