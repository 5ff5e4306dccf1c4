//! How DynamoDB's errors are classified: retryable, conditional failures, cancellations.

use super::*;

pub(super) fn backend<E: std::error::Error>(e: E) -> StoreError {
    StoreError::Backend(format!("dynamodb: {}", DisplayErrorContext(e)))
}

/// What an error (or a transaction cancellation reason) code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// A condition we set did not hold: a domain answer, never retried here.
    Condition,
    /// Another transaction held one of the items: retry after a pause.
    Conflict,
    /// Over the table's or partition's throughput: retry after a longer pause.
    Throttled,
    /// DynamoDB refuses the request itself (item over 400 KB, nesting over 32, number out of
    /// range, ...): the same request fails every time.
    Invalid,
    Other,
}

pub(super) fn classify(code: Option<&str>) -> Class {
    match code {
        Some("ConditionalCheckFailed" | "ConditionalCheckFailedException") => Class::Condition,
        Some("TransactionConflict" | "TransactionConflictException" | "TransactionInProgressException") => {
            Class::Conflict
        }
        Some(
            "ThrottlingError"
            | "ThrottlingException"
            | "Throttling"
            | "ProvisionedThroughputExceeded"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded",
        ) => Class::Throttled,
        Some(
            "ValidationError"
            | "ValidationException"
            | "ItemCollectionSizeLimitExceeded"
            | "ItemCollectionSizeLimitExceededException",
        ) => Class::Invalid,
        _ => Class::Other,
    }
}

/// The outcome of a cancelled transaction from its per-operation reasons (`None` and
/// `"None"` mean that operation was fine). A failed condition wins: it is the answer the
/// caller asked for. Then a refusal (permanent), then throttling, then conflicts.
pub(super) fn cancellation(reasons: &[Option<&str>]) -> (Class, Option<usize>) {
    let classes: Vec<Class> = reasons.iter().map(|code| classify(*code)).collect();
    if let Some(i) = classes.iter().position(|c| *c == Class::Condition) {
        return (Class::Condition, Some(i));
    }
    for class in [Class::Invalid, Class::Throttled, Class::Conflict] {
        if let Some(i) = classes.iter().position(|c| *c == class) {
            return (class, Some(i));
        }
    }
    // No usable reason: treat as a conflict, which is what DynamoDB means most often.
    (Class::Conflict, None)
}

/// A call's error as a store error plus whether to retry it here.
pub(super) fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> (Class, StoreError)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let class = classify(e.code());
    let text = format!("dynamodb {what}: {}", DisplayErrorContext(&e));
    let error = match class {
        Class::Condition => StoreError::ConditionFailed,
        Class::Conflict | Class::Throttled => StoreError::Busy(text),
        Class::Invalid => StoreError::Refused(text),
        Class::Other => StoreError::Backend(text),
    };
    (class, error)
}
