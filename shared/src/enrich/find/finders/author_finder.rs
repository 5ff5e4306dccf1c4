//! The author finder: the author of a web page, then their address.

use super::*;

/// The author finder's work.
pub async fn author_finder(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let url_text = required(params, "url")?;
    let outbound = web::client(ctx)?;
    let url = outbound.check_url(url_text).map_err(|e| EnrichError::invalid("url", e.to_string()))?;
    let domain = url.host_str().unwrap_or_default().trim_start_matches("www.").to_ascii_lowercase();
    let fresh_for = ctx.config.enrich.result_ttl;
    let empty = |reason: String, found: Option<author::Author>| {
        json!({
            "url": url.as_str(), "domain": domain, "email": null, "score": 0, "author": found, "reason": reason,
            "first_name": null, "last_name": null, "sources": [], "alternatives": [],
            "verification": {"date": null, "status": null},
        })
    };
    let html = match crawl::fetch_page(&outbound, &url, &web::limits(ctx)).await {
        crawl::PageFetch::Page { html, .. } => html,
        crawl::PageFetch::Refused(why) => {
            return Ok(Computed { data: empty(format!("the page could not be read: {why}"), None), fresh_for });
        }
    };
    let Some(found) = author::find_author(&html) else {
        return Ok(Computed { data: empty("no author found on the page".into(), None), fresh_for });
    };
    let Some(name) = found.name.as_deref().and_then(MailName::from_full) else {
        let why = match &found.name {
            Some(n) => format!("the author `{n}` is not a first and last name"),
            None => "the page names only a Twitter handle, not a person".into(),
        };
        return Ok(Computed { data: empty(why, Some(found)), fresh_for });
    };
    let finding = find_email(ctx, workspace_id, &name, &domain, None).await?;
    let mut data = to_value(&finding)?;
    if let Some(object) = data.as_object_mut() {
        if object.get("twitter").is_some_and(Value::is_null)
            && let Some(handle) = &found.twitter
        {
            object.insert("twitter".into(), json!(handle));
        }
        object.insert("author".into(), to_value(&found)?);
        object.insert("url".into(), json!(url.as_str()));
    }
    Ok(Computed { data, fresh_for })
}
