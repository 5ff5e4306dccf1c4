//! The finders: email finder, domain search, author finder and phone finder.
//!
//! Two kinds of knowledge back them, and every answer names its sources: the workspace's
//! own leads (never another workspace's), and the public web fetched at request time by a
//! bounded, robots.txt-honouring crawl through the SSRF-guarded client ([`crawl`]).

pub mod author;
pub mod crawl;
pub mod extract;
pub mod finders;
pub mod names;
pub mod phones;
pub mod roles;
pub mod web;
