//! Acquire: bringing marketplace buyers into the brand's own channels. Tracking links and QR
//! codes, SMS recall campaigns, package-card batches and their landing page.

pub mod campaigns;
pub mod cards;
pub mod codes;
pub mod human_check;
pub mod links;
pub mod otp;
pub mod qr;
pub mod report;
pub mod scans;
