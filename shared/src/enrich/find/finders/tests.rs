use std::sync::{Arc, Mutex};

use super::*;
use crate::domain::lead::LeadFields;
use crate::support::time::Clock;

struct TestClock(Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

fn lead(id: &str, first: &str, last: &str, email: &str) -> Lead {
    let fields = LeadFields {
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        email: Some(email.into()),
        company: Some("Acme Corp".into()),
        ..LeadFields::default()
    };
    Lead::new(id.into(), "cmp_1".into(), None, fields, Timestamp::now())
}

/// A domain's facts and a company's domain are read once, answered from their cache
/// items until they expire, then learnt again (with the leads ingested meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_facts_and_company_domains_are_cached_until_they_expire() {
    let (mut ctx, _dir) = crate::testing::embedded_context();
    let clock = Arc::new(TestClock(Mutex::new(Timestamp::now())));
    ctx.clock = clock.clone();
    let store = &*ctx.store;
    let first =
        [lead("req_F_0001", "Jane", "Doe", "jdoe@acme.test"), lead("req_F_0002", "Bob", "Smith", "bsmith@acme.test")];
    leads::put_many(store, "ws_1", &first).await.unwrap();

    let facts = domain_facts(&ctx, "ws_1", "acme.test").await.unwrap();
    assert_eq!(facts.stats(None).pattern(), Some("{f}{last}"));
    assert_eq!(facts.organization.as_deref(), Some("Acme Corp"));
    let jane = MailName::new("Jane", "Doe").unwrap();
    assert_eq!(facts.person(&jane).map(|p| p.email.as_str()), Some("jdoe@acme.test"));
    assert_eq!(company_domain(&ctx, "ws_1", "ACME corp.").await.unwrap().as_deref(), Some("acme.test"));
    assert_eq!(company_domain(&ctx, "ws_2", "Acme Corp").await.unwrap(), None, "another workspace");

    // Leads arrive that change both answers: the caches still answer.
    let more: Vec<Lead> = (0..3)
        .map(|i| {
            let mut l = lead(&format!("req_G_000{i}"), &format!("Ann{i}"), "Lee", &format!("ann{i}.lee@acme.test"));
            l.company = Some("Acme Corp".into());
            l.website = Some("https://www.acme.example".into());
            l.email = Some(format!("ann{i}.lee@acme.example"));
            l
        })
        .collect();
    leads::put_many(store, "ws_1", &more).await.unwrap();
    leads::put_many(store, "ws_1", &[lead("req_G_0009", "Zed", "Zulu", "zed.zulu@acme.test")]).await.unwrap();
    let cached = domain_facts(&ctx, "ws_1", "acme.test").await.unwrap();
    assert_eq!((cached.people.len(), cached.at), (2, facts.at));
    assert_eq!(company_domain(&ctx, "ws_1", "Acme Corp").await.unwrap().as_deref(), Some("acme.test"));

    // After the TTL both are learnt again.
    let later = clock.now().plus(FACTS_TTL + std::time::Duration::from_secs(1));
    *clock.0.lock().unwrap() = later;
    let fresh = domain_facts(&ctx, "ws_1", "acme.test").await.unwrap();
    let zed = MailName::new("Zed", "Zulu").unwrap();
    assert_eq!((fresh.people.len(), fresh.person(&zed).map(|p| p.lead_id.as_str())), (3, Some("req_G_0009")));
    assert_eq!(company_domain(&ctx, "ws_1", "Acme Corp").await.unwrap().as_deref(), Some("acme.example"));
}
