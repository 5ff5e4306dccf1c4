//! Learning from outcomes: each lead's `predicted_score`, the probability of a positive
//! outcome once pushed, learned from the workspace's pushed leads (`model`, pure), from
//! the lead's groups (`features`); kept current by a queued, debounced recomputation
//! (`schedule`, `recompute`), which also builds each group's weekly rates (`trends`);
//! `planted` measures it on a workspace with known effects.
//!
//! `features`, `recompute`, `trends` and `planted` classify titles with the finders' rules
//! (linked by workflow-worker, which rescores); `schedule` is linked wherever outcome
//! events are recorded.

pub mod features;
pub mod model;
pub mod planted;
pub mod recompute;
pub mod schedule;
pub mod trends;
