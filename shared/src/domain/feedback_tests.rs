use super::*;
use crate::domain::lead::LeadFields;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn lead() -> Lead {
    let fields = LeadFields { name: Some("Alice".into()), ..LeadFields::default() };
    Lead::new("lead_1".into(), "cmp_1".into(), None, fields, at("2026-05-01T00:00:00Z"))
}

fn ev(event_type: EventType, when: &str, content: &str) -> Outcome {
    Outcome {
        event_type,
        content: Some(content.to_owned()),
        meeting_url: (event_type == EventType::MeetingBooked).then(|| format!("https://meet.example/{content}")),
        occurred_at: at(when),
    }
}

fn fold(events: &[Outcome]) -> Lead {
    let mut lead = lead();
    for e in events {
        apply(&mut lead, e, at("2026-06-01T00:00:00Z"));
    }
    lead
}

type OutcomeFields = (
    LeadStatus,
    Option<Timestamp>,
    Option<String>,
    Option<Timestamp>,
    Option<String>,
    Option<Feedback>,
    Option<String>,
    Option<Timestamp>,
);

/// The outcome fields only (updated_at reflects arrival, not outcome).
fn outcome_of(lead: &Lead) -> OutcomeFields {
    (
        lead.status,
        lead.replied_at,
        lead.reply_content.clone(),
        lead.meeting_booked_at,
        lead.meeting_url.clone(),
        lead.feedback,
        lead.feedback_reason.clone(),
        lead.feedback_at,
    )
}

fn permutations(items: &[Outcome]) -> Vec<Vec<Outcome>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            out.push(tail);
        }
    }
    out
}

#[test]
fn each_event_type_sets_what_the_seed_says() {
    let mut l = lead();
    let a = apply(&mut l, &ev(EventType::Open, "2026-05-02T10:00:00Z", "x"), Timestamp::now());
    assert!(!a.mutated && a.note.contains("do not change"), "{}", a.note);
    assert_eq!(l, lead());

    let mut l = lead();
    assert!(apply(&mut l, &ev(EventType::Reply, "2026-05-02T12:00:00Z", "hi"), Timestamp::now()).mutated);
    assert_eq!((l.status, l.reply_content.as_deref(), l.feedback), (LeadStatus::Replied, Some("hi"), None));
    assert_eq!(l.replied_at, Some(at("2026-05-02T12:00:00Z")));

    let mut l = lead();
    apply(&mut l, &ev(EventType::PositiveReply, "2026-05-02T12:00:00Z", "Interested"), Timestamp::now());
    assert_eq!(
        (l.status, l.feedback, l.feedback_reason.as_deref()),
        (LeadStatus::Replied, Some(Feedback::Positive), Some("Interested"))
    );

    let mut l = lead();
    apply(&mut l, &ev(EventType::Bounce, "2026-05-02T12:00:00Z", "mailbox full"), Timestamp::now());
    assert_eq!(
        (l.status, l.feedback, l.feedback_reason.as_deref()),
        (LeadStatus::Skipped, Some(Feedback::Negative), Some("mailbox full"))
    );

    let mut l = lead();
    apply(&mut l, &ev(EventType::MeetingBooked, "2026-05-02T12:00:00Z", "m1"), Timestamp::now());
    assert_eq!((l.status, l.feedback), (LeadStatus::MeetingBooked, Some(Feedback::Positive)));
    assert_eq!(
        (l.meeting_booked_at, l.meeting_url.as_deref()),
        (Some(at("2026-05-02T12:00:00Z")), Some("https://meet.example/m1"))
    );
}

#[test]
fn outcomes_never_go_backwards() {
    let mut l = fold(&[ev(EventType::MeetingBooked, "2026-05-02T10:00:00Z", "m")]);
    let a = apply(&mut l, &ev(EventType::Reply, "2026-05-02T11:00:00Z", "late reply"), Timestamp::now());
    assert_eq!(l.status, LeadStatus::MeetingBooked);
    assert!(a.mutated, "the reply itself is recorded on the lead");
    assert!(a.note.contains("Status stays meeting_booked because outcomes never go backwards"), "{}", a.note);
    assert_eq!(l.feedback, Some(Feedback::Positive));

    let mut l = fold(&[ev(EventType::Reply, "2026-05-02T10:00:00Z", "hi")]);
    let before = l.clone();
    let a = apply(&mut l, &ev(EventType::Bounce, "2026-05-02T11:00:00Z", "bounced"), Timestamp::now());
    assert!(!a.mutated);
    assert_eq!(l, before);
    assert!(a.note.contains("Status stays replied because outcomes never go backwards"), "{}", a.note);
}

#[test]
fn an_older_event_arriving_late_does_not_overwrite_a_newer_one() {
    let mut l = fold(&[ev(EventType::Reply, "2026-05-02T12:00:00Z", "newer")]);
    let a = apply(&mut l, &ev(EventType::Reply, "2026-05-02T11:00:00Z", "older"), Timestamp::now());
    assert!(!a.mutated);
    assert_eq!(l.reply_content.as_deref(), Some("newer"));
    assert!(a.note.contains("newer reply of 2026-05-02T12:00:00.000Z"), "{}", a.note);
}

#[test]
fn a_reply_lifts_a_bounced_lead_and_clears_the_bounce_verdict() {
    let l =
        fold(&[ev(EventType::Bounce, "2026-05-02T10:00:00Z", "b"), ev(EventType::Reply, "2026-05-02T11:00:00Z", "r")]);
    assert_eq!((l.status, l.feedback, l.feedback_reason), (LeadStatus::Replied, None, None));
}

#[test]
fn the_result_does_not_depend_on_arrival_order() {
    let events = [
        ev(EventType::Bounce, "2026-05-02T13:00:00Z", "bounce"),
        ev(EventType::Reply, "2026-05-02T10:00:00Z", "reply"),
        ev(EventType::PositiveReply, "2026-05-02T11:00:00Z", "positive"),
        ev(EventType::MeetingBooked, "2026-05-02T09:00:00Z", "meeting"),
        ev(EventType::Open, "2026-05-02T08:00:00Z", "open"),
    ];
    // Every subset (as a prefix of the list) in every order folds to the in-time-order result.
    for n in 1..=events.len() {
        let subset = &events[..n];
        let mut sorted = subset.to_vec();
        sorted.sort_by_key(|e| e.occurred_at);
        let expected = outcome_of(&fold(&sorted));
        for order in permutations(subset) {
            assert_eq!(
                outcome_of(&fold(&order)),
                expected,
                "order {:?}",
                order.iter().map(|e| e.event_type).collect::<Vec<_>>()
            );
        }
    }
    let all = fold(&events);
    assert_eq!(all.status, LeadStatus::MeetingBooked);
    assert_eq!((all.reply_content.as_deref(), all.feedback_reason.as_deref()), (Some("positive"), Some("meeting")));
}

#[test]
fn input_rules_name_the_field() {
    let now = at("2026-05-02T12:00:00Z");
    assert_eq!(parse_event_type("event_type", "opened").unwrap_err().field, "event_type");
    assert!(parse_event_type("event_type", "opened").unwrap_err().message.contains("positive_reply"));
    assert!(parse_source("source", "zapier").unwrap_err().message.contains("heyreach"));
    assert!(parse_occurred_at("occurred_at", "yesterday", now).is_err());
    assert!(parse_occurred_at("occurred_at", "2026-05-02T13:00:00Z", now).unwrap_err().message.contains("future"));
    assert!(parse_occurred_at("occurred_at", "1999-12-31T23:59:59Z", now).is_err());
    assert_eq!(parse_occurred_at("occurred_at", "2026-05-02T14:05:00+02:00", now).unwrap(), at("2026-05-02T12:05:00Z"));
    assert!(parse_metadata("metadata", Some(&serde_json::json!([1]))).is_err());
    assert!(parse_metadata("metadata", Some(&serde_json::json!({"a": 1}))).unwrap().is_some());
    assert!(parse_meeting_url("meeting_url", Some("javascript:alert(1)")).is_err());
    assert_eq!(optional_text("content", Some("  "), 5).unwrap(), None);
    assert!(optional_text("content", Some("123456"), 5).is_err());
    assert_eq!(truncated(Some("abcdef"), 3).as_deref(), Some("abc"));
}
