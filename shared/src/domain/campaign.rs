//! Campaigns: a standard campaign whose leads arrive by webhook or manually, moving
//! `draft -> active <-> paused`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ValidationError, required_text};
use crate::support::time::Timestamp;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignType {
    Standard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadSource {
    /// Leads are pushed in through `POST /api/v1/webhook/leads`.
    Webhook,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Active,
    Paused,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Active => "active",
            CampaignStatus::Paused => "paused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub campaign_type: CampaignType,
    pub lead_source: LeadSource,
    pub status: CampaignStatus,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the campaign was first activated; leads can be previewed from then on.
    pub activated_at: Option<Timestamp>,
}

/// A status change the campaign's current status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("A {from} campaign cannot be {action}.")]
pub struct TransitionError {
    pub from: &'static str,
    pub action: &'static str,
}

impl Campaign {
    pub fn new(
        id: String,
        name: &str,
        lead_source: LeadSource,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            id,
            name: required_text("name", name, MAX_NAME_CHARS)?,
            campaign_type: CampaignType::Standard,
            lead_source,
            status: CampaignStatus::Draft,
            description: optional_description(description)?,
            created_at: now,
            updated_at: now,
            activated_at: None,
        })
    }

    pub fn activate(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        match self.status {
            CampaignStatus::Draft | CampaignStatus::Paused => {
                self.status = CampaignStatus::Active;
                self.activated_at.get_or_insert(now);
                self.updated_at = now;
                Ok(())
            }
            CampaignStatus::Active => Err(TransitionError { from: "active", action: "activated again" }),
        }
    }

    pub fn pause(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        match self.status {
            CampaignStatus::Active => {
                self.status = CampaignStatus::Paused;
                self.updated_at = now;
                Ok(())
            }
            other => Err(TransitionError { from: other.as_str(), action: "paused" }),
        }
    }

    /// Leads show in the preview once the campaign has been activated (the webhook-campaign
    /// setup guide).
    pub fn leads_visible(&self) -> bool {
        self.activated_at.is_some()
    }

    pub fn rename(&mut self, name: &str, now: Timestamp) -> Result<(), ValidationError> {
        self.name = required_text("name", name, MAX_NAME_CHARS)?;
        self.updated_at = now;
        Ok(())
    }

    pub fn describe(&mut self, description: Option<&str>, now: Timestamp) -> Result<(), ValidationError> {
        self.description = optional_description(description)?;
        self.updated_at = now;
        Ok(())
    }

    /// The lead source is fixed once leads may have arrived (after the draft stage).
    pub fn change_source(&mut self, source: LeadSource, now: Timestamp) -> Result<(), ValidationError> {
        if source != self.lead_source && self.status != CampaignStatus::Draft {
            return Err(ValidationError::new("lead_source", "can only be changed while the campaign is a draft"));
        }
        self.lead_source = source;
        self.updated_at = now;
        Ok(())
    }
}

fn optional_description(description: Option<&str>) -> Result<Option<String>, ValidationError> {
    match description.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => {
            Err(ValidationError::new("description", format!("must be at most {MAX_DESCRIPTION_CHARS} characters")))
        }
        Some(d) => Ok(Some(d.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign() -> Campaign {
        Campaign::new("cmp_1".into(), " Q3 outbound ", LeadSource::Webhook, None, Timestamp::now()).unwrap()
    }

    #[test]
    fn campaigns_start_as_trimmed_drafts_without_preview() {
        let c = campaign();
        assert_eq!((c.name.as_str(), c.status), ("Q3 outbound", CampaignStatus::Draft));
        assert!(!c.leads_visible());
        assert!(Campaign::new("x".into(), "  ", LeadSource::Manual, None, Timestamp::now()).is_err());
    }

    #[test]
    fn status_moves_draft_to_active_to_paused_and_back() {
        let mut c = campaign();
        assert!(c.pause(Timestamp::now()).is_err());
        c.activate(Timestamp::now()).unwrap();
        let first = c.activated_at;
        assert!(c.activate(Timestamp::now()).is_err());
        c.pause(Timestamp::now()).unwrap();
        assert_eq!(c.status, CampaignStatus::Paused);
        assert!(c.leads_visible(), "a paused campaign was activated: its leads stay visible");
        c.activate(Timestamp::now()).unwrap();
        assert_eq!(c.activated_at, first);
        assert!(c.change_source(LeadSource::Manual, Timestamp::now()).is_err());
    }
}
