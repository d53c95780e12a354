//! Models by name: the cache, the registry of known models, pulling them, mapping a file, checking
//! its signature, and the thread pool a host runs the engine on. Shared by the `llamux` CLI and the tools.

pub mod cache;
pub mod huge_pages;
pub mod loaded;
pub mod mapped;
pub mod pool;
pub mod pull;
pub mod registry;
pub mod trust;
