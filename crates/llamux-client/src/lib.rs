//! The client library of the Llamux tools: one streaming API over three hosts of the engine —
//! the kernel module (`/proc/llamux/*`), a running `llamux serve` (HTTP), or the engine in this
//! process (the model memory-mapped) — chosen automatically or by configuration, with the same
//! requests, answers and errors whichever runs.
//!
//! ```no_run
//! use llamux_client::{backend, Config, Message, Request, Role};
//! let cfg = Config::load()?;
//! let mut b = backend::connect(&cfg)?;
//! let req = Request::chat(&cfg, vec![Message::new(Role::User, "Hello")]);
//! b.generate(&req, &mut |text| { print!("{text}"); Ok(()) })?;
//! # Ok::<(), llamux_client::ClientError>(())
//! ```

pub mod backend;
pub mod config;
pub mod error;
pub mod models;
pub mod state;
pub mod text;

pub use backend::{Backend, BackendKind, BackendSelect, Finish, Info, Message, Outcome, Request, Role};
pub use config::Config;
pub use error::{ClientError, Result};
