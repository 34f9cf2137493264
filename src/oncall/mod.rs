//! The on-call job: rotations, overrides and swaps, shift hand-offs.
//!
//! `handoff` holds the contract through which the other jobs contribute to a
//! shift's hand-off summary (open requests, incidents, pending approvals,
//! notable changes) without this job reading their tables.

pub mod handoff;
