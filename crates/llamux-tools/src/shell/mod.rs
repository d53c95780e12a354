//! `lsh`, the Llama Shell: an ordinary command shell (pipelines, redirections, quoting,
//! variables, builtins) whose `?` lines are requests in plain words, answered with one proposed
//! command that runs only when the user says so.

pub mod builtins;
pub mod complete;
pub mod exec;
pub mod expand;
pub mod job;
pub mod lex;
pub mod parse;
pub mod request;
