//! Rescue-grade reading and source safety (issue 9).
//!
//! A backup of a dead machine is often a backup of a dying disk. This module gets
//! every readable byte out of it without hanging on the bad parts (`reader`), says
//! which bytes were lost, can inject such failures for tests (`faulty`), and keeps
//! the source unwritable in the kernel while it is read (`readonly`).

pub mod faulty;
pub mod owners;
pub mod reader;
pub mod readonly;

pub use faulty::{
    parse_spec, wrap_from_env, Fault, FaultKind, FaultSpecError, FaultyDevice, FAULTS_ENV,
};
pub use reader::{BadRange, Piece, RescueOptions, RescueReader, RescueStats, RunError, SetAside};
pub use readonly::{set_read_only, ReadOnlyError, ReadOnlyGuard, ReadOnlyState};

#[cfg(test)]
mod tests;
