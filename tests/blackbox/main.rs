//! Black-box tests: the HTTP API of the real `leadpush serve` binary, on the embedded
//! store and on DynamoDB + SQS (moto), with real local receivers for outbound calls.

mod harness;

mod callbacks;
mod campaigns;
mod conformance;
mod enrich;
mod feedback;
mod finders;
mod ingest;
mod insights;
mod integrations;
mod leads;
mod metering;
mod platform;
mod prober;
mod push;
mod reliability;
mod scores;
mod webhooks;
mod workflow;
