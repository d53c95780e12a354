//! The Llamux userspace tools: `llama` (the system assistant), `llminfer`, `llmctl`, `llmstats`,
//! and `llamux-act` (the confined executor of `llama`'s actions). Facts first, model second: code
//! measures the system and ranks what it finds; the model explains those facts and nothing it says
//! is executed — actions come from rules over the request, with arguments from the measurements,
//! and run only after the user says yes.

pub mod action;
pub mod audit;
pub mod common;
pub mod confine;
pub mod findings;
pub mod guard;
pub mod intent;
pub mod monitor;
pub mod probe;
pub mod shell;
