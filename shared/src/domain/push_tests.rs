#[test]
fn lead_ids_over_128_characters_are_refused_naming_the_entry() {
    let ok = vec!["a".repeat(super::MAX_LEAD_ID_CHARS), "b".into()];
    assert_eq!(super::distinct_lead_ids(&ok).unwrap().len(), 2);
    let long = vec!["a".into(), "x".repeat(super::MAX_LEAD_ID_CHARS + 1)];
    let err = super::distinct_lead_ids(&long).unwrap_err();
    assert_eq!(err.field, "lead_ids[1]");
    assert!(err.message.contains("at most 128"), "{}", err.message);
}

use std::collections::HashSet;

use super::*;

fn t(s: &str) -> Timestamp {
    Timestamp::parse(&format!("2026-05-02T12:{s}Z")).unwrap()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn webhook_push(requested: &[&str], found: &[&str], max_attempts: u32) -> Push {
    let target = PushTarget {
        destination: Destination::WebhookUrl,
        webhook_url: Some("https://example.com/hook".into()),
        list_id: None,
        campaign_id: None,
    };
    let found: HashSet<&str> = found.iter().copied().collect();
    Push::new("push_1".into(), target, &ids(requested), &found, max_attempts, t("00:00"))
}

fn call(status: Option<u16>, body: &str, leads: usize) -> CallResult {
    let succeeded = status.is_some_and(|s| (200..300).contains(&s));
    CallResult { lead_count: leads, status_code: status, response: body.into(), succeeded, retry_after: None }
}

fn pushed() -> LeadResult {
    LeadResult::Pushed { provider_lead_id: None, note: None }
}

#[test]
fn a_successful_attempt_reports_missing_ids_and_ends_the_push() {
    let mut push = webhook_push(&["a", "b", "x"], &["a", "b"], 5);
    assert_eq!(push.pending_ids(), ids(&["a", "b"]));
    let result = AttemptResult {
        leads: vec![("a".into(), pushed()), ("b".into(), pushed())],
        calls: vec![call(Some(200), r#"{"ok":true}"#, 2)],
    };
    push.record_attempt(1, &result, Duration::from_secs(30), t("00:01"));
    let summary = push.summary(&result);
    assert_eq!(summary.status, DispatchStatus::Dispatched);
    assert_eq!((summary.lead_count, summary.requested_lead_count), (2, 3));
    assert_eq!(summary.missing_lead_ids, ids(&["x"]));
    assert_eq!((summary.provider_status_code, summary.provider_response.as_str()), (Some(200), r#"{"ok":true}"#));
    assert_eq!((push.status, push.completed_at, push.next_attempt_at), (PushState::Dispatched, Some(t("00:01")), None));
    assert_eq!(push.leads[2].outcome, LeadOutcome::Missing);
}

#[test]
fn a_refused_attempt_lists_every_id_as_missing_and_ends_when_not_retryable() {
    let mut push = webhook_push(&["lead_1", "lead_2"], &["lead_1", "lead_2"], 5);
    let reason = "HTTP 501 from the webhook URL".to_owned();
    let result = AttemptResult {
        leads: vec![
            ("lead_1".into(), LeadResult::Rejected(reason.clone())),
            ("lead_2".into(), LeadResult::Rejected(reason)),
        ],
        calls: vec![call(Some(501), "Unsupported method", 2)],
    };
    push.record_attempt(1, &result, Duration::from_secs(30), t("00:01"));
    let summary = push.summary(&result);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "status": "dispatch_failed", "destination": "webhook_url", "lead_count": 0,
            "requested_lead_count": 2, "missing_lead_ids": ["lead_1", "lead_2"], "dispatched": false,
            "provider_status_code": 501, "provider_response": "Unsupported method", "push_id": "push_1"
        })
    );
    assert_eq!(push.status, PushState::DispatchFailed);
}

#[test]
fn retryable_failures_stay_pending_until_attempts_run_out() {
    let mut push = webhook_push(&["a"], &["a"], 2);
    let failed = AttemptResult {
        leads: vec![("a".into(), LeadResult::Retry(format!("timed out {}", "x".repeat(500))))],
        calls: vec![call(None, "timed out after 10s", 1)],
    };
    push.record_attempt(1, &failed, Duration::from_secs(30), t("00:01"));
    assert_eq!((push.status, push.pending_count), (PushState::Retrying, 1));
    assert_eq!(push.next_attempt_at, Some(t("00:31")));
    assert_eq!(push.summary(&failed).provider_status_code, None);
    push.record_attempt(2, &failed, Duration::from_secs(30), t("01:00"));
    assert_eq!((push.status, push.failed_count), (PushState::DispatchFailed, 1));
    let reason = push.leads[0].reason.as_deref().unwrap();
    assert!(reason.starts_with("timed out") && reason.ends_with("…; gave up after 2 attempts"), "{reason}");
    assert_eq!(push.attempt_log.len(), 2);
}

#[test]
fn partial_chunks_are_partial_and_the_first_failure_is_the_headline() {
    let mut push = webhook_push(&["a", "b", "c"], &["a", "b", "c"], 3);
    let result = AttemptResult {
        leads: vec![("a".into(), pushed()), ("b".into(), LeadResult::Retry("429".into())), ("c".into(), pushed())],
        calls: vec![call(Some(200), "ok", 1), call(Some(429), "slow down", 1), call(Some(200), "ok", 1)],
    };
    push.record_attempt(1, &result, Duration::from_secs(5), t("00:01"));
    let summary = push.summary(&result);
    assert_eq!(
        (summary.status, summary.lead_count, summary.provider_status_code),
        (DispatchStatus::DispatchFailed, 2, Some(429))
    );
    assert_eq!(summary.missing_lead_ids, ids(&["b"]));
    assert_eq!(push.pending_ids(), ids(&["b"]));
    let retry = AttemptResult {
        leads: vec![("b".into(), LeadResult::Rejected("refused".into()))],
        calls: vec![call(Some(400), "bad", 1)],
    };
    push.record_attempt(2, &retry, Duration::from_secs(5), t("00:10"));
    assert_eq!((push.status, push.lead_count, push.failed_count), (PushState::PartiallyDispatched, 2, 1));
}

#[test]
fn nothing_to_send_is_a_clear_failure() {
    let mut push = webhook_push(&["x", "y"], &[], 5);
    push.record_attempt(1, &AttemptResult::default(), Duration::ZERO, t("00:01"));
    let summary = push.summary(&AttemptResult::default());
    assert_eq!(
        (summary.status, summary.dispatched, summary.provider_status_code),
        (DispatchStatus::DispatchFailed, false, None)
    );
    assert_eq!(summary.provider_response, "Nothing was sent to the webhook URL: 2 leads not found in this workspace.");
    assert_eq!(push.status, PushState::DispatchFailed);
}

#[test]
fn retry_delays_follow_the_schedule_and_honour_retry_after_within_the_queue_limit() {
    let schedule = [Duration::from_secs(30), Duration::from_secs(120)];
    assert_eq!(retry_delay(&schedule, 1, None, 0.0), Duration::from_secs(30));
    assert_eq!(retry_delay(&schedule, 1, None, 1.0), Duration::from_secs(36));
    assert_eq!(retry_delay(&schedule, 2, None, 0.0), Duration::from_secs(120));
    assert_eq!(retry_delay(&schedule, 9, None, 0.0), Duration::from_secs(120), "the last step repeats");
    assert_eq!(retry_delay(&schedule, 1, Some(Duration::from_secs(90)), 0.0), Duration::from_secs(90));
    assert_eq!(retry_delay(&schedule, 1, Some(Duration::from_secs(7200)), 0.0), MAX_RETRY_DELAY);
}

#[test]
fn lead_ids_are_deduplicated_in_order_and_bounded() {
    assert_eq!(distinct_lead_ids(&ids(&["b", "a", "b", "c", "a"])).unwrap(), ids(&["b", "a", "c"]));
    assert_eq!(distinct_lead_ids(&[]).unwrap_err().field, "lead_ids");
    let many: Vec<String> = (0..=MAX_LEAD_IDS).map(|i| i.to_string()).collect();
    assert!(distinct_lead_ids(&many).unwrap_err().message.contains("at most 1000"));
    assert_eq!(distinct_lead_ids(&many[..MAX_LEAD_IDS]).unwrap().len(), MAX_LEAD_IDS);
}

/// What `record_attempt` keeps of a long text cut at `max` bytes: the longest whole-character
/// prefix within `max`, then `…`.
fn cut_whole(text: &str, max: usize) -> String {
    let kept: String = text.char_indices().take_while(|(i, c)| i + c.len_utf8() <= max).map(|(_, c)| c).collect();
    format!("{kept}…")
}

#[test]
fn truncation_keeps_characters_whole() {
    // Multi-byte characters straddling each limit: a 2-byte accent at the provider
    // response's, a 4-byte emoji at the logged response's, 2-byte umlauts at the reasons'.
    let response = format!("{}é{}", "a".repeat(PROVIDER_RESPONSE_MAX_BYTES - 1), "z".repeat(10));
    let logged = format!("{}😀{}", "b".repeat(LOGGED_RESPONSE_MAX_BYTES - 2), "z".repeat(600));
    let reason = format!("x{}", "ü".repeat(MAX_REASON_BYTES));
    let mut push = webhook_push(&["a", "b"], &["a", "b"], 2);
    let result = AttemptResult {
        leads: vec![
            ("a".into(), LeadResult::Rejected(reason.clone())),
            ("b".into(), LeadResult::Retry(reason.clone())),
        ],
        calls: vec![call(Some(500), &response, 1), call(Some(200), &logged, 1)],
    };
    push.record_attempt(2, &result, Duration::from_secs(30), t("00:01"));

    // Each text is cut before the character that would cross its limit, never inside it.
    assert_eq!(push.provider_response, format!("{}…", "a".repeat(PROVIDER_RESPONSE_MAX_BYTES - 1)));
    let calls = &push.attempt_log[0].calls;
    assert_eq!(calls[0].response, cut_whole(&response, LOGGED_RESPONSE_MAX_BYTES));
    assert_eq!(calls[1].response, format!("{}…", "b".repeat(LOGGED_RESPONSE_MAX_BYTES - 2)));
    let rejected = push.leads[0].reason.as_deref().unwrap();
    assert_eq!(rejected, format!("x{}…", "ü".repeat((MAX_REASON_BYTES - 1) / 2)));
    let given_up = push.leads[1].reason.as_deref().unwrap();
    assert_eq!(given_up, format!("{rejected}; gave up after 2 attempts"));
    // The limits hold in bytes: what is kept of the original fits, `…` (3 bytes) aside.
    for (kept, max) in [
        (push.provider_response.as_str(), PROVIDER_RESPONSE_MAX_BYTES),
        (calls[0].response.as_str(), LOGGED_RESPONSE_MAX_BYTES),
        (calls[1].response.as_str(), LOGGED_RESPONSE_MAX_BYTES),
        (rejected, MAX_REASON_BYTES),
    ] {
        let prefix = kept.strip_suffix('…').expect("a cut text ends with …");
        assert!(prefix.len() <= max && max - prefix.len() < 4, "{} bytes kept of {max}", prefix.len());
    }

    // Text within its limit is kept as it is, multi-byte characters and all, without `…`.
    let exact = format!("{}é", "a".repeat(PROVIDER_RESPONSE_MAX_BYTES - 2));
    let short_reason = "ü".repeat(MAX_REASON_BYTES / 2);
    let result = AttemptResult {
        leads: vec![("a".into(), LeadResult::Rejected(short_reason.clone()))],
        calls: vec![call(Some(400), &exact, 1)],
    };
    let mut push = webhook_push(&["a"], &["a"], 2);
    push.record_attempt(1, &result, Duration::from_secs(30), t("00:01"));
    assert_eq!(
        (push.provider_response.len(), push.provider_response.as_str()),
        (PROVIDER_RESPONSE_MAX_BYTES, exact.as_str())
    );
    assert_eq!(push.leads[0].reason.as_deref(), Some(short_reason.as_str()));
}
