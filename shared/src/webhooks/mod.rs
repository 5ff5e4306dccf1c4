//! Outbound webhooks: `save_lead` fan-out to endpoints, and one delivery attempt.
//!
//! At-least-once queues redeliver messages, so both steps are idempotent: fan-out derives
//! delivery ids from the event, and an attempt first takes a short lease on its delivery,
//! skips settled deliveries, and records the outcome with a versioned write.

mod attempt;
mod enqueue;
mod fan_out;
mod health;
pub mod sample;
pub mod send;
pub mod signing;
mod sweep;

pub use attempt::deliver;
pub use enqueue::{CALLBACK, enqueue, new_delivery, queue_callback};
pub use fan_out::{SaveLeadEvent, fan_out_save_lead};
pub use sweep::{SWEEP_GRACE, sweep};

#[cfg(test)]
mod tests;
