use super::*;

fn now() -> Timestamp {
    Timestamp::parse("2026-05-02T12:00:00Z").unwrap()
}

fn parse_heyreach_at(payload: &Value, now: Timestamp) -> Result<Parsed, ValidationError> {
    parse_heyreach(payload, None, now)
}

fn reason(parsed: Parsed) -> (String, NotAccepted, String) {
    match parsed {
        Parsed::NotAccepted { provider_event, reason, detail } => (provider_event, reason, detail),
        Parsed::Event(e) => panic!("{} was accepted", e.provider_event),
    }
}

fn event(parsed: Parsed) -> ProviderEvent {
    match parsed {
        Parsed::Event(e) => *e,
        Parsed::NotAccepted { provider_event, reason, .. } => panic!("{provider_event} not accepted: {reason:?}"),
    }
}

fn instantly(event_type: &str) -> Value {
    json!({
        "timestamp": "2026-05-02T11:00:00.000Z", "event_type": event_type, "workspace": "w-1",
        "campaign_id": "c-1", "campaign_name": "Q3", "lead_email": "Jane@Acme.com", "step": 1, "variant": 1,
        "reply_text": "Sounds good", "reply_text_snippet": "Sounds", "company_name": "Acme"
    })
}

#[test]
fn metadata_copies_are_bounded_scalars() {
    let mut payload = instantly("reply_received");
    payload["campaign_name"] = json!("n".repeat(100_000));
    payload["step"] = json!({"deep": [[[1]]]});
    payload["variant"] = json!(1e300);
    let e = event(parse_instantly(&payload, now()).unwrap());
    assert!(e.metadata["campaign_name"].as_str().unwrap().len() <= MAX_KEPT_CHARS + '…'.len_utf8());
    assert!(!e.metadata.contains_key("step") && !e.metadata.contains_key("variant"), "{:?}", e.metadata);
    assert!(serde_json::to_string(&e.metadata).unwrap().len() < 2 * 1024);
}

#[test]
fn instantly_events_map_to_ours() {
    for (name, ours) in [
        ("email_opened", EventType::Open),
        ("link_clicked", EventType::Click),
        ("email_link_clicked", EventType::Click),
        ("reply_received", EventType::Reply),
        ("lead_interested", EventType::PositiveReply),
        ("email_bounced", EventType::Bounce),
        ("lead_meeting_booked", EventType::MeetingBooked),
    ] {
        let e = event(parse_instantly(&instantly(name), now()).unwrap());
        assert_eq!((e.event_type, e.provider_event.as_str()), (ours, name));
        assert_eq!(e.lead.email.as_deref(), Some("jane@acme.com"));
    }
    let e = event(parse_instantly(&instantly("reply_received"), now()).unwrap());
    assert_eq!(e.content.as_deref(), Some("Sounds good"));
    assert_eq!(e.occurred_at, Timestamp::parse("2026-05-02T11:00:00Z"));
    assert_eq!(e.metadata["campaign_name"], "Q3");
    assert_eq!(event(parse_instantly(&instantly("email_opened"), now()).unwrap()).content, None);
}

#[test]
fn instantly_retries_share_an_id_and_distinct_events_do_not() {
    let a = event(parse_instantly(&instantly("reply_received"), now()).unwrap());
    let b = event(parse_instantly(&instantly("reply_received"), now()).unwrap());
    assert_eq!(a.event_id, b.event_id);
    let mut other = instantly("reply_received");
    other["step"] = json!(2);
    assert_ne!(event(parse_instantly(&other, now()).unwrap()).event_id, a.event_id);
    assert!(a.event_id.starts_with("instantly:"));
}

#[test]
fn instantly_routine_misses_are_not_accepted_and_only_foreign_bodies_are_errors() {
    assert_eq!(reason(parse_instantly(&instantly("email_sent"), now()).unwrap()).1, NotAccepted::UntrackedEvent);
    // A workspace custom label arrives as raw text in `event_type`.
    let (name, why, detail) = reason(parse_instantly(&instantly("Interested - Q3 follow up"), now()).unwrap());
    assert_eq!((name.as_str(), why), ("Interested - Q3 follow up", NotAccepted::UnknownEvent));
    assert!(detail.contains("custom label") && detail.contains("reply_received"), "{detail}");
    let mut no_lead = instantly("reply_received");
    no_lead.as_object_mut().unwrap().remove("lead_email");
    let (_, why, detail) = reason(parse_instantly(&no_lead, now()).unwrap());
    assert_eq!(why, NotAccepted::UnusablePayload);
    assert!(detail.starts_with("lead_email: is required"), "{detail}");
    no_lead["leadpush_id"] = json!("req_1_0001");
    assert_eq!(event(parse_instantly(&no_lead, now()).unwrap()).lead.lead_id.as_deref(), Some("req_1_0001"));
    let mut bad_time = instantly("reply_received");
    bad_time["timestamp"] = json!("tuesday");
    assert!(reason(parse_instantly(&bad_time, now()).unwrap()).2.starts_with("timestamp:"));
    // Not Instantly's shape at all: still a 400.
    let e = parse_instantly(&json!({"hello": "world"}), now()).unwrap_err();
    assert_eq!(e.field, "event_type");
    assert!(e.message.contains("Instantly"), "{}", e.message);
    assert_eq!(parse_instantly(&json!([1]), now()).unwrap_err().field, "body");
}

fn heyreach(event_type: &str) -> Value {
    json!({
        "event_type": event_type, "timestamp": "2026-05-02T11:00:00Z", "correlation_id": "corr-1",
        "conversation_id": "2-abc", "is_inmail": false,
        "recent_messages": [
            {"creation_time": "2026-05-02T10:00:00Z", "message": "Hi Jane", "is_reply": false},
            {"creation_time": "2026-05-02T10:59:00Z", "message": "Happy to chat", "is_reply": true},
            {"creation_time": "2026-05-02T11:00:00Z", "message": "Great!", "is_reply": false}
        ],
        "campaign": {"id": 456, "name": "LinkedIn Q1", "status": "IN_PROGRESS"},
        "lead": {"id": "918418165", "profile_url": "https://www.linkedin.com/in/Jane-Doe/", "email_address": null,
                 "lists": [{"id": 1, "name": "L", "custom_fields": {"leadpush_id": "req_X_0001"}}]}
    })
}

#[test]
fn heyreach_replies_map_with_the_last_reply_text() {
    for name in ["MESSAGE_REPLY_RECEIVED", "inmail_reply_received", "every_message_reply_received"] {
        let e = event(parse_heyreach_at(&heyreach(name), now()).unwrap());
        assert_eq!(e.event_type, EventType::Reply);
        assert_eq!(e.content.as_deref(), Some("Happy to chat"));
        assert_eq!(e.lead.linkedin.as_deref(), Some("linkedin.com/in/jane-doe"));
        assert_eq!(e.lead.lead_id.as_deref(), Some("req_X_0001"));
        assert_eq!(e.metadata["campaign"], json!({"id": 456, "name": "LinkedIn Q1"}));
    }
    assert_eq!(
        reason(parse_heyreach_at(&heyreach("connection_request_sent"), now()).unwrap()).1,
        NotAccepted::UntrackedEvent
    );
    let per_campaign = event(parse_heyreach_at(&heyreach("message_reply_received"), now()).unwrap());
    let every = event(parse_heyreach_at(&heyreach("every_message_reply_received"), now()).unwrap());
    assert_eq!(per_campaign.event_id, every.event_id, "one reply seen through two subscriptions");
    let mut later = heyreach("message_reply_received");
    later["timestamp"] = json!("2026-05-02T11:30:00Z");
    assert_ne!(event(parse_heyreach_at(&later, now()).unwrap()).event_id, per_campaign.event_id);
}

#[test]
fn heyreach_shapes_vary_and_are_read_defensively() {
    let payload = json!({
        "eventType": "MESSAGE_REPLY_RECEIVED",
        "recentMessages": [{"creationTime": "2026-05-02T10:59:00Z", "message": "Yes", "isReply": true}],
        "lead": {"profileUrl": "linkedin.com/in/jane-doe", "emailAddress": "Jane@Acme.com",
                 "customUserFields": [{"name": "leadpush_id", "value": "req_Y_0002"}]}
    });
    let e = event(parse_heyreach_at(&payload, now()).unwrap());
    assert_eq!(e.lead.lead_id.as_deref(), Some("req_Y_0002"));
    assert_eq!(e.lead.email.as_deref(), Some("jane@acme.com"));
    assert_eq!(e.occurred_at, Timestamp::parse("2026-05-02T10:59:00Z"), "the reply's own time");
    let (_, why, detail) =
        reason(parse_heyreach_at(&json!({"event_type": "message_reply_received", "lead": {}}), now()).unwrap());
    assert_eq!(why, NotAccepted::UnusablePayload);
    assert!(detail.starts_with("lead.profile_url:"), "{detail}");
    let bad = json!({"event_type": "message_reply_received", "lead": {"profile_url": "https://example.com/jane"}});
    assert!(reason(parse_heyreach_at(&bad, now()).unwrap()).2.starts_with("lead.profile_url:"));
    // No event name in the body: the webhook URL's `?event=` stands in; without it, a 400.
    let nameless = json!({"lead": {"profile_url": "https://www.linkedin.com/in/jane"},
                          "recent_messages": [{"message": "Yes", "is_reply": true}]});
    let e = parse_heyreach_at(&nameless, now()).unwrap_err();
    assert_eq!(e.field, "event_type");
    assert!(e.message.contains("HeyReach") && e.message.contains("&event="), "{}", e.message);
    let e = event(parse_heyreach(&nameless, Some("MESSAGE_REPLY_RECEIVED"), now()).unwrap());
    assert_eq!((e.event_type, e.provider_event.as_str()), (EventType::Reply, "message_reply_received"));
    let mut named = nameless.clone();
    named["event_type"] = json!("connection_request_accepted");
    let (name, _, _) = reason(parse_heyreach(&named, Some("MESSAGE_REPLY_RECEIVED"), now()).unwrap());
    assert_eq!(name, "connection_request_accepted", "the payload's own name wins");
}
