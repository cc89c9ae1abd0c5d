//! The `bootsim` binary's own modules (not part of the library): the
//! subcommands beyond `run`, the panic hook and the allocator tuning. They
//! may use the whole public `bootsim` library and nothing else of the crate.

pub mod commands;
pub mod malloc;
pub mod panics;
