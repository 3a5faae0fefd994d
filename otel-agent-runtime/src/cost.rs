//! What model calls cost, from a price table the user provides.
//!
//! Prices change too often to ship: give them in code ([`PriceTable::with_model`])
//! or in a TOML file named by `OTEL_AGENT_PRICES_FILE`:
//!
//! ```toml
//! # USD per million tokens
//! [models."gpt-4o"]
//! input = 2.50
//! output = 10.00
//! cached_input = 1.25
//!
//! [models."claude-sonnet-4-5"]
//! input = 3.00
//! output = 15.00
//! ```
//!
//! A model matches its exact name or, failing that, the longest name in the table
//! it starts with (`gpt-4o-2024-08-06` is priced as `gpt-4o`). The cost is recorded
//! on the call's span (`otel_agent.cost.usd`), summed onto every enclosing step's
//! span, and counted in the `otel_agent.llm.cost.usd` counter; calls to models the
//! table does not price are counted in `otel_agent.llm.unpriced_calls`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::response::Usage;

/// Prices of one model, in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input (prompt) tokens.
    pub input: f64,
    /// Output (completion) tokens.
    pub output: f64,
    /// Input tokens read from the provider's cache (default: the input price).
    #[serde(default)]
    pub cached_input: Option<f64>,
}

impl Price {
    /// Input and output prices, in USD per million tokens.
    pub fn new(input: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cached_input: None,
        }
    }

    /// Adds the price of cached input tokens.
    pub fn with_cached_input(mut self, price: f64) -> Self {
        self.cached_input = Some(price);
        self
    }

    /// The cost of a call with this usage, or `None` when no token count is known.
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        if usage.input_tokens.is_none() && usage.output_tokens.is_none() {
            return None;
        }
        let input = usage.input_tokens.unwrap_or(0) as f64;
        let cached = (usage.cache_read_input_tokens.unwrap_or(0) as f64).min(input);
        let output = usage.output_tokens.unwrap_or(0) as f64;
        let dollars = (input - cached) * self.input
            + cached * self.cached_input.unwrap_or(self.input)
            + output * self.output;
        Some(dollars / 1_000_000.0)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    models: BTreeMap<String, Price>,
}

/// Prices per model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, Price>,
}

impl PriceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a model's prices.
    pub fn with_model(mut self, model: impl Into<String>, price: Price) -> Self {
        self.models.insert(model.into(), price);
        self
    }

    /// Parses the TOML format shown in the module docs.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: PriceFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        for (model, price) in &file.models {
            let values = [Some(price.input), Some(price.output), price.cached_input];
            if values
                .into_iter()
                .flatten()
                .any(|v| !v.is_finite() || v < 0.0)
            {
                return Err(format!(
                    "the prices of `{model}` must be non-negative numbers"
                ));
            }
        }
        Ok(Self {
            models: file.models,
        })
    }

    /// Reads a TOML price file.
    pub fn from_file(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        Self::from_toml(&text)
    }

    /// Number of priced models.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether no model is priced.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// What a call cost: priced by the model that answered, else by the one
    /// asked for; `None` when neither is priced or the usage is unknown.
    pub(crate) fn call_cost(
        &self,
        response_model: Option<&str>,
        request_model: Option<&str>,
        usage: &crate::Usage,
    ) -> Option<f64> {
        response_model
            .and_then(|m| self.price_for(m))
            .or_else(|| self.price_for(request_model?))?
            .cost(usage)
    }

    /// The prices for a model: its exact name, else the longest priced prefix.
    pub fn price_for(&self, model: &str) -> Option<&Price> {
        self.models.get(model).or_else(|| {
            self.models
                .iter()
                .filter(|(name, _)| model.starts_with(name.as_str()))
                .max_by_key(|(name, _)| name.len())
                .map(|(_, price)| price)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_table_with_cached_input_and_prefixes() {
        let table = PriceTable::from_toml(
            "[models.\"gpt-4o\"]\ninput = 2.5\noutput = 10.0\ncached_input = 1.25\n\
             [models.\"gpt-4o-mini\"]\ninput = 0.15\noutput = 0.6\n",
        )
        .unwrap();
        let usage = Usage::new(1_000_000, 100_000).with_cache_read(400_000);
        let cost = table
            .price_for("gpt-4o-2024-08-06")
            .unwrap()
            .cost(&usage)
            .unwrap();
        assert!(
            (cost - (0.6 * 2.5 + 0.4 * 1.25 + 0.1 * 10.0)).abs() < 1e-9,
            "{cost}"
        );
        assert_eq!(
            table.price_for("gpt-4o-mini-2024-07-18").unwrap().input,
            0.15
        );
        assert!(table.price_for("claude-3").is_none());
        assert_eq!(Price::new(1.0, 1.0).cost(&Usage::default()), None);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(PriceTable::from_toml("[models.x]\ninput = 1\n")
            .unwrap_err()
            .contains("output"));
        assert!(
            PriceTable::from_toml("[models.x]\ninput = 1.0\noutput = -2.0\n")
                .unwrap_err()
                .contains("non-negative")
        );
        assert!(
            PriceTable::from_toml("[models.x]\ninput = 1.0\noutput = 2.0\ncache = 1.0\n")
                .unwrap_err()
                .contains("cache")
        );
    }
}
