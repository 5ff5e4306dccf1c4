//! Learning from outcomes: each lead's `predicted_score`, the probability of a positive
//! outcome once pushed, learned from the workspace's pushed leads (`model`, pure), from
//! the lead's groups (`features`); `planted` measures it on a workspace with known effects.

pub mod features;
pub mod model;
pub mod planted;
