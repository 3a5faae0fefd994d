//! Per call site metric handles (filled in by the bound-instrument cache).

/// The metric handles of one call site, bound to its attribute sets.
#[derive(Debug)]
pub struct SiteMetrics {}

impl SiteMetrics {
    /// An empty cache, for the site's `static`.
    pub const NEW: SiteMetrics = SiteMetrics {};
}
